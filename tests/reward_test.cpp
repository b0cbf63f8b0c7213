// Tests of the verifiable math reward: extraction, normalisation, hostile answers, the case table
// in fixtures/reward/cases.jsonl, and agreement with Hugging Face math-verify on that table.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reward/reward.h"

#ifndef OVR_TEST_FIXTURES
#define OVR_TEST_FIXTURES "/work/main/tests/fixtures"
#endif

namespace {

using ovr::reward::answers_equivalent;
using ovr::reward::extract_boxed;
using ovr::reward::normalize_answer;
using ovr::reward::score_response;

// ---- extraction -------------------------------------------------------------------------------

TEST(RewardExtract, nested_braces_are_kept_whole) {
  EXPECT_EQ(extract_boxed("so $\\boxed{\\frac{\\sqrt{2}}{2}}$."), "\\frac{\\sqrt{2}}{2}");
}

TEST(RewardExtract, fbox_counts_as_a_box) { EXPECT_EQ(extract_boxed("answer \\fbox{12}"), "12"); }

TEST(RewardExtract, space_form_runs_to_whitespace_or_dollar) {
  EXPECT_EQ(extract_boxed("the answer is \\boxed 5 indeed"), "5");
  EXPECT_EQ(extract_boxed("$\\boxed 17$"), "17");
  EXPECT_EQ(extract_boxed("\\boxed {3}"), "3");
}

TEST(RewardExtract, last_box_wins) {
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\boxed{2} and finally \\fbox{3}"), "3");
  EXPECT_EQ(extract_boxed("\\fbox{3} then \\boxed{4}"), "4");
}

TEST(RewardExtract, unbalanced_last_box_is_no_answer) {
  EXPECT_EQ(extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}"), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed{"), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed"), std::nullopt);
}

TEST(RewardExtract, no_box_and_empty_box) {
  EXPECT_EQ(extract_boxed("The answer is 5."), std::nullopt);
  EXPECT_EQ(extract_boxed("\\boxed{}"), "");
  EXPECT_EQ(extract_boxed("\\boxedx{5}"), std::nullopt);  // another command, not \boxed
}

TEST(RewardExtract, escaped_braces_do_not_group) { EXPECT_EQ(extract_boxed("\\boxed{\\{1,2\\}}"), "\\{1,2\\}"); }

TEST(RewardExtract, answer_tag_limits_the_search_to_the_last_span) {
  ovr::reward::ExtractOptions tag{true};
  EXPECT_EQ(extract_boxed("<answer>\\boxed{1}</answer> later \\boxed{2}", tag), "1");
  EXPECT_EQ(extract_boxed("<answer>1</answer> <answer> \\boxed{3} </answer>", tag), "3");
  EXPECT_EQ(extract_boxed("<answer> 42 </answer>", tag), "42");  // the tag alone marks the answer
  EXPECT_EQ(extract_boxed("\\boxed{2} without tags", tag), std::nullopt);
  EXPECT_EQ(extract_boxed("<answer>\\boxed{2}", tag), std::nullopt);  // never closed
  EXPECT_EQ(extract_boxed("<answer>\\boxed{1}</answer> later \\boxed{2}"), "2");  // option off
}

// ---- normalisation ----------------------------------------------------------------------------

TEST(RewardNormalize, strips_formatting_that_does_not_change_the_value) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {" 5 ", "5"},
      {"\\left( 1, 2 \\right)", "(1,2)"},
      {"\\dfrac{1}{2}", "\\frac{1}{2}"},
      {"\\tfrac12", "\\frac{1}{2}"},
      {"\\frac\\pi4", "\\frac{\\pi}{4}"},
      {"\\sqrt2", "\\sqrt{2}"},
      {"\\sqrt[3]2", "\\sqrt[3]{2}"},
      {"\\text{(B)}", "(B)"},
      {"\\textbf{yes}", "yes"},
      {"\\mbox{12}", "12"},
      {"5 \\text{ cm}", "5"},
      {"12\\text{ cm}^2", "12"},
      {"3 \\text{ square meters}", "3"},
      {"60 \\text{ km/h}", "60"},
      {"10 \\text{ dollars}", "10"},
      {"90^\\circ", "90^\\circ"},  // degree signs are kept, in one form: 90^\\circ may equal \\frac{\\pi}{2}
      {"90^{\\circ}", "90^\\circ"},
      {"45\u00b0", "45^\\circ"},
      {"25\\%", "25"},
      {"\\$18.90", "18.90"},
      {"5.", "5"},
      {"x = 5", "5"},
      {"y=2x+1", "2x+1"},
      {"\\theta = \\pi", "\\pi"},
      {"x \\in [0,1]", "[0,1]"},
      {"=\\frac{7}{4}", "\\frac{7}{4}"},  // MathVerse writes some answers as the right-hand side alone
      {"== 3", "==3"},  // not a naming: left as it is (spaces go, as everywhere)
      {"1,000", "1000"},
      {"1,234,567.5", "1234567.5"},
      {"1{,}000", "1000"},
      {"10\\,000", "10000"},
      {"1,00", "1,00"},  // not groups of three: left alone
      {".5", "0.5"},
      {"-.5", "-0.5"},
      {"\\pi r^2", "\\pi r^2"},  // the space keeps \pi and r apart
      {"2\\!\\cdot\\;3", "2\\cdot3"},
      {"\\displaystyle\\frac{1}{2}", "\\frac{1}{2}"},
      {"{{7}}", "7"},
      {"\u22125", "-5"},
      {"2 \\text{ and } 3", "2,3"},
      {"x", "x"},          // a lone variable stays
      {"5 m", "5"},        // a single-letter unit needs the space
      {"5m", "5m"},
      {"\\min", "\\min"},  // a command is not a unit
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(normalize_answer(in), want) << "input: " << in;
}

// ---- equivalence ------------------------------------------------------------------------------

TEST(RewardEquivalent, documented_tolerance_decisions) {
  EXPECT_TRUE(answers_equivalent("0.3333333", "\\frac{1}{3}"));  // the correct rounding of 1/3
  EXPECT_TRUE(answers_equivalent("0.6667", "\\frac{2}{3}"));      // 4 significant digits, rounded
  EXPECT_FALSE(answers_equivalent("0.6666", "\\frac{2}{3}"));     // truncated, not rounded
  EXPECT_FALSE(answers_equivalent("0.33", "\\frac{1}{3}"));       // too few digits
  EXPECT_TRUE(answers_equivalent("0.25", "\\frac{1}{4}"));        // a terminating value: exactly
  EXPECT_FALSE(answers_equivalent("0.2500001", "\\frac{1}{4}"));
  EXPECT_FALSE(answers_equivalent("100001", "100000"));           // integers compare exactly
  EXPECT_FALSE(answers_equivalent("1.0000001", "1"));             // two decimals compare exactly
  EXPECT_FALSE(answers_equivalent("0.00001", "0"));
  EXPECT_FALSE(answers_equivalent("10^{-10000}", "0"));           // underflow is not zero
  EXPECT_FALSE(answers_equivalent("\\frac{1}{3}", "0.33"));       // a short reference needs a stated precision
  EXPECT_TRUE(answers_equivalent("\\frac{1}{3}", "0.3333"));
  EXPECT_TRUE(answers_equivalent("\\sin(\\pi)", "0"));           // exact forms: up to double rounding
  ovr::reward::EquivOptions strict;
  strict.min_significant_digits = 10;
  EXPECT_FALSE(answers_equivalent("0.3333333", "\\frac{1}{3}", strict));
  ovr::reward::EquivOptions mathvista;  // a benchmark's stated precision: 2 decimals
  mathvista.decimal_places = 2;
  EXPECT_TRUE(answers_equivalent("3.14159", "3.14", mathvista));
  EXPECT_FALSE(answers_equivalent("3.15", "3.14", mathvista));
  EXPECT_TRUE(answers_equivalent("\\frac{1}{3}", "0.33", mathvista));
}

TEST(RewardEquivalent, letters_and_values_never_match) {
  EXPECT_TRUE(answers_equivalent("(B)", "B"));
  EXPECT_FALSE(answers_equivalent("B", "2"));
  EXPECT_FALSE(answers_equivalent("2", "(B)"));
}

TEST(RewardEquivalent, brackets_of_intervals_must_match) {
  EXPECT_TRUE(answers_equivalent("[1,3)", "[1, 3)"));
  EXPECT_FALSE(answers_equivalent("[1,3]", "[1,3)"));
  EXPECT_FALSE(answers_equivalent("(1,3)", "[1,3)"));
}

TEST(RewardEquivalent, symbolic_expressions_are_compared_at_points) {
  EXPECT_TRUE(answers_equivalent("2x+2", "2(x+1)"));
  EXPECT_TRUE(answers_equivalent("x^2-1", "(x-1)(x+1)"));
  EXPECT_FALSE(answers_equivalent("x^2+1", "(x-1)(x+1)"));
}

TEST(RewardScore, reasons) {
  EXPECT_EQ(score_response("\\boxed{4}", "4", false).reason, "correct");
  EXPECT_EQ(score_response("\\boxed{4}", "4", false).reward, 1.0);
  EXPECT_EQ(score_response("\\boxed{5}", "4", false).reason, "wrong");
  EXPECT_EQ(score_response("4", "4", false).reason, "no_answer");
  EXPECT_EQ(score_response("\\boxed{}", "4", false).reason, "no_answer");
  auto t = score_response("\\boxed{4}", "4", true);
  EXPECT_EQ(t.reason, "truncated");
  EXPECT_EQ(t.reward, 0.0);
  EXPECT_EQ(t.extracted, "4");  // recorded for the logs
  EXPECT_EQ(score_response("\\boxed{" + std::string(2000, '1') + "}", "1", false).reason, "too_long");
}

// ---- hostile answers: wrong, fast, no crash ---------------------------------------------------

// Runs f and checks that it returned false within a second (generous: it takes microseconds).
template <class F>
void expect_fast_false(const char* what, F f) {
  auto start = std::chrono::steady_clock::now();
  bool result = f();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(result) << what;
  EXPECT_LT(seconds, 1.0) << what;
}

TEST(RewardHostile, hostile_answers_are_wrong_and_fast) {
  ovr::reward::EquivOptions unlimited;  // lift the length limit so the parser's own limits are tested
  unlimited.max_length = 10'000'000;
  const std::string deep_braces = std::string(50'000, '{') + "1" + std::string(50'000, '}');
  const std::string open_parens = std::string(1'000'000, '(');
  const std::string deep_parens = std::string(5'000, '(') + "1" + std::string(5'000, ')');
  std::string long_list, other_list;
  for (int i = 0; i < 400; ++i) long_list += "1,", other_list += "2,";
  long_list += "1", other_list += "2";
  std::string deep_fracs;
  for (int i = 0; i < 20'000; ++i) deep_fracs += "\\frac{1}{";
  deep_fracs += "1" + std::string(20'000, '}');
  std::string texts, ands;
  for (int i = 0; i < 20'000; ++i) texts += "\\text{", ands += "and ";

  expect_fast_false("deep braces in a box", [&] { return score_response("\\boxed{" + deep_braces + "}", "1", false).reward > 0; });
  expect_fast_false("deep braces, unlimited", [&] { return answers_equivalent(deep_braces, "2", unlimited); });
  expect_fast_false("unbalanced box", [&] { return score_response("\\boxed{" + open_parens, "1", false).reward > 0; });
  expect_fast_false("power tower", [&] { return answers_equivalent("9^9^9^9^9", "1"); });
  expect_fast_false("huge factorial", [&] { return answers_equivalent("99999999999999999999!", "1"); });
  expect_fast_false("factorial of a factorial", [&] { return answers_equivalent("((100!)!)!", "1"); });
  expect_fast_false("10^6 '('", [&] { return answers_equivalent(open_parens, "1"); });
  expect_fast_false("10^6 '(', unlimited", [&] { return answers_equivalent(open_parens, "1", unlimited); });
  expect_fast_false("deep parentheses, unlimited", [&] { return answers_equivalent(deep_parens, "2", unlimited); });
  expect_fast_false("deep fractions, unlimited", [&] { return answers_equivalent(deep_fracs, "2", unlimited); });
  expect_fast_false("nested \\text, unlimited", [&] { return answers_equivalent(texts, "2", unlimited); });
  expect_fast_false("long lists", [&] { return answers_equivalent(long_list, other_list, unlimited); });
  std::string long_sum = "1";
  for (int i = 0; i < 500'000; ++i) long_sum += "+1";
  expect_fast_false("a sum of 500k terms, unlimited", [&] { return answers_equivalent(long_sum, "2", unlimited); });
  expect_fast_false("minus signs", [&] { return answers_equivalent(std::string(100'000, '-') + "1", "2", unlimited); });
  expect_fast_false("many variables", [&] { return answers_equivalent("abcdefghijklmnopqrstuvwxyz^{99}", "1"); });
  expect_fast_false("binary garbage", [&] { return answers_equivalent(std::string("\x00\xff\\\\{}^_", 9), "1"); });
  auto start = std::chrono::steady_clock::now();
  for (const std::string& s : {deep_braces, open_parens, deep_fracs, texts, ands, long_sum}) normalize_answer(s);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
}

// ---- the case table ---------------------------------------------------------------------------

struct Case {
  std::string id, response, answer, note, kind;
  bool truncated;
  int expected;
};

std::vector<Case> load_cases(const std::string& path = OVR_TEST_FIXTURES "/reward/cases.jsonl") {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<Case> cases;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("id"), j.at("response"), j.at("answer"), j.value("note", ""), j.value("kind", ""),
                     j.value("truncated", false), j.at("expected").get<int>()});
  }
  return cases;
}

TEST(RewardTable, every_case_scores_as_expected) {
  const std::vector<Case> cases = load_cases();
  EXPECT_GE(cases.size(), 220u);
  int failures = 0;
  for (const Case& c : cases) {
    auto r = score_response(c.response, c.answer, c.truncated);
    if (static_cast<int>(r.reward) != c.expected) {
      ++failures;
      ADD_FAILURE() << c.id << ": predicted " << r.reward << " (" << r.reason << ", extracted \"" << r.extracted
                    << "\"), expected " << c.expected << ", answer \"" << c.answer << "\"  -- " << c.note;
    }
  }
  std::printf("reward table: %d of %zu cases as expected\n", static_cast<int>(cases.size()) - failures, cases.size());
}

// ---- agreement with math-verify ---------------------------------------------------------------

// Cases where we knowingly disagree with math-verify 0.9.0 (verdicts in math_verify.jsonl, made by
// make_math_verify_expectations.py). Each entry says why we keep our verdict.
const std::map<std::string, std::string> kMathVerifyDisagreements = {
    // Extraction policy: the prompt asks for a box, and the last box is the answer.
    {"box_missing", "math-verify grades an unboxed answer; no box scores 0 for us"},
    {"box_missing_dollar", "math-verify grades an unboxed answer; no box scores 0 for us"},
    {"box_missing_bold", "math-verify grades an unboxed answer; no box scores 0 for us"},
    {"box_unbalanced_only", "math-verify falls back to other LaTeX; an unbalanced last box is no answer for us"},
    {"box_last_of_several", "math-verify takes every box ({3,4}); we take the last one"},
    {"box_fbox", "math-verify does not extract \\fbox"},
    {"box_space_before_brace", "math-verify does not match \\boxed {3}, which LaTeX renders as a box"},
    // Numeric tolerance: a correct rounding of a non-terminating value with >= 4 significant digits
    // counts for us (docs/reward.md); math-verify rounds both sides to 6 decimals.
    {"frac_two_thirds_5sig", "0.66667 is 2/3 correctly rounded; math-verify wants 6 decimals"},
    {"sqrt_decimal_6sig", "1.41421 is sqrt(2) correctly rounded; math-verify wants 6 decimals"},
    {"pi_decimal_6sig", "3.14159 is pi correctly rounded; math-verify wants 6 decimals"},
    // Forms math-verify does not read (its verdict is wrong there).
    {"int_spaces", "math-verify reads \"1 000 000\" as 1*0*0; we drop spaces (SI digit groups)"},
    {"thousands_thin_space", "math-verify does not read 10\\,000 as ten thousand"},
    {"trailing_period", "math-verify fails to parse \\boxed{5.}"},
    {"sci_e_notation", "math-verify reads 1.5e3 as 1.5*e*3"},
    {"unit_degree_symbol", "math-verify does not drop the unicode degree sign"},
    {"unicode_sqrt", "math-verify does not read the unicode root sign"},
    {"frac_pi_shorthand", "math-verify misparses \\frac\\pi4 (valid LaTeX for pi/4)"},
    {"sqrt_cube_root_neg", "sympy takes the principal, complex cube root of -27; we take the real one"},
    {"mc_right_paren", "math-verify does not read the choice form \"B)\""},
    {"mc_with_content", "math-verify does not read \"(B) 12\" as choice B"},
    // Deliberate differences in what counts as the same answer.
    {"unit_percent_vs_fraction", "math-verify reads 25% as 0.25; we drop %, so 25% = 25 (MATH convention)"},
    {"mc_lowercase", "math-verify lowercases letters; for us lowercase b is a variable, not choice B"},
    {"tuple_vs_list", "math-verify reads (1,2) as an open interval and matches the set {1,2}; a bare list is unordered"},
    {"unit_degrees_vs_radians", "90^\\circ and \\frac{\\pi}{2} are one angle; math-verify does not convert degrees"},
    {"sym_log_rule", "we compare ln(x^2) and 2 ln x where both are defined (x > 0); sympy keeps them apart"},
};

// math-verify's verdict per case id (math_verify.jsonl, made by make_math_verify_expectations.py).
std::map<std::string, int> math_verify_verdicts() {
  const std::string path = OVR_TEST_FIXTURES "/reward/math_verify.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::map<std::string, int> theirs;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      theirs[j.at("id")] = j.at("math_verify").get<int>();
    }
  return theirs;
}

TEST(RewardTable, agrees_with_math_verify_except_where_listed) {
  const std::map<std::string, int> theirs = math_verify_verdicts();
  ASSERT_FALSE(theirs.empty());
  int compared = 0, agree = 0;
  for (const Case& c : load_cases()) {
    auto it = theirs.find(c.id);
    if (it == theirs.end()) {
      ADD_FAILURE() << c.id << ": no math-verify verdict; rerun make_math_verify_expectations.py";
      continue;
    }
    ++compared;
    int ours = static_cast<int>(score_response(c.response, c.answer, c.truncated).reward);
    if (ours == it->second) {
      ++agree;
      if (kMathVerifyDisagreements.count(c.id)) std::printf("math-verify: %s now agrees; drop it from the list\n", c.id.c_str());
      continue;
    }
    auto listed = kMathVerifyDisagreements.find(c.id);
    const bool known = listed != kMathVerifyDisagreements.end();
    std::printf("math-verify disagreement: %-28s ours %d, theirs %d  (%s)  %s\n", c.id.c_str(), ours, it->second,
                c.note.c_str(), known ? ("listed: " + listed->second).c_str() : "NOT LISTED");
    if (!known) ADD_FAILURE() << c.id << ": ours " << ours << ", math-verify " << it->second << " -- " << c.note;
  }
  std::printf("math-verify agreement: %d/%d\n", agree, compared);
}

// ---- the table of kinds -------------------------------------------------------------------------

// kinds.jsonl (make_kind_cases.py): hand-labelled cases grouped by the kind of answer they test
// (inequalities and intervals, matrices, complex numbers, tolerance, ...). Every case must score
// as labelled; the table printed beside shows math-verify's agreement with the same labels.
TEST(RewardKinds, every_case_scores_as_labelled) {
  const std::vector<Case> cases = load_cases(OVR_TEST_FIXTURES "/reward/kinds.jsonl");
  ASSERT_GE(cases.size(), 200u);
  const std::map<std::string, int> theirs = math_verify_verdicts();
  struct Tally {
    int cases = 0, ours = 0, theirs = 0, judged = 0;
  };
  std::map<std::string, Tally> by_kind;
  Tally all;
  for (const Case& c : cases) {
    auto r = score_response(c.response, c.answer, c.truncated);
    const bool ok = static_cast<int>(r.reward) == c.expected;
    if (!ok)
      ADD_FAILURE() << c.id << ": predicted " << r.reward << " (" << r.reason << ", extracted \"" << r.extracted
                    << "\"), labelled " << c.expected << ", answer \"" << c.answer << "\"  -- " << c.note;
    auto it = theirs.find(c.id);
    for (Tally* t : {&by_kind[c.kind], &all}) {
      ++t->cases;
      t->ours += ok;
      if (it != theirs.end()) ++t->judged, t->theirs += it->second == c.expected;
    }
  }
  std::printf("%-10s %6s %10s %12s\n", "kind", "cases", "ovr", "math-verify");
  for (const auto& [kind, t] : by_kind)
    std::printf("%-10s %6d %6d/%-3d %8d/%-3d\n", kind.c_str(), t.cases, t.ours, t.cases, t.theirs, t.judged);
  std::printf("%-10s %6d %6d/%-3d %8d/%-3d\n", "all", all.cases, all.ours, all.cases, all.theirs, all.judged);
}

}  // namespace
