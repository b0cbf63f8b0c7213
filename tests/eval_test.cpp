// Tests of the evaluation's inputs and figures: MATH500 and MATH-Vision in their published forms,
// the generic form with a field map, bad rows counted and named, option letters, pass@k,
// majority vote and the summary.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "common/error.h"
#include "eval/benchmark.h"
#include "eval/scores.h"
#include "eval_test_util.h"
#include "text/chat_template.h"

using namespace ovr;
using namespace ovr::eval;

namespace {

const std::string kBench = test::shared_benchmarks();
const std::string kOurs = std::string(OVR_TEST_FIXTURES) + "/eval";
using test::user_text;

#define SKIP_WITHOUT_SHARED_BENCHMARKS() SKIP_WITHOUT_SHARED("math500/test.jsonl")

double binomial(int n, int k) { return k < 0 || k > n ? 0.0 : std::round(std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1))); }

}  // namespace

TEST(Benchmark, Math500IsReadWithItsFieldsAndTheBoxedInstruction) {
  SKIP_WITHOUT_SHARED_BENCHMARKS();
  const Benchmark b = load_benchmark(kBench + "/math500/test.jsonl", "math500", FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 500u);
  EXPECT_TRUE(b.bad_rows.empty());
  const Problem& p = b.problems[0];
  EXPECT_EQ(p.prompt.id, "test/precalculus/807.json");
  EXPECT_EQ(p.prompt.answer, "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(*p.subject, "Precalculus");
  EXPECT_EQ(*p.level, "2");
  EXPECT_EQ(p.line, 1);
  EXPECT_TRUE(p.prompt.images.empty());
  const std::string text = user_text(p);
  EXPECT_EQ(text.rfind("Convert the point $(0,3)$", 0), 0u);
  EXPECT_NE(text.find("\nPlease reason step by step, and put your final answer within \\boxed{}."), std::string::npos);
}

TEST(Benchmark, MathVisionPlacesTheImageAtItsPlaceholderAndListsOptions) {
  SKIP_WITHOUT_SHARED_BENCHMARKS();
  const Benchmark b = load_benchmark(kBench + "/mathvision_sample/testmini_sample.jsonl", "mathvision", FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 12u);
  EXPECT_TRUE(b.bad_rows.empty());
  // Row 2 (id 173): options with text, answer E; "<image1>" at the end of the question.
  const Problem& p = b.problems[1];
  EXPECT_EQ(p.prompt.id, "173");
  EXPECT_EQ(p.prompt.answer, "E");
  ASSERT_EQ(p.prompt.images.size(), 1u);
  EXPECT_EQ(p.prompt.images[0], kBench + "/mathvision_sample/images/173.jpg");
  const std::string text = user_text(p);
  EXPECT_NE(text.find("radius of circle $K$?\n<IMG>"), std::string::npos) << text;
  EXPECT_NE(text.find("Options:\nA. $\\frac{6-\\sqrt{2}}{2}$\nB."), std::string::npos) << text;
  EXPECT_NE(text.find("E. $6(\\sqrt{2}-1)$\nPlease reason step by step, and put the letter"), std::string::npos) << text;
  // Row 1 (id 514): options drawn in the picture; <image2> names no file and stays as written (as
  // MATH-V's own scripts keep it), not deleted from the sentence.
  const std::string first = user_text(b.problems[0]);
  EXPECT_NE(first.find("same size?\n<IMG>\n<image2>\n\nOptions: A, B, C, D, E"), std::string::npos) << first;
  EXPECT_EQ(first.find("<image1>"), std::string::npos);
  // Row 3 (id 811): no options, a numeric answer, the plain instruction.
  EXPECT_NE(user_text(b.problems[2]).find("within \\boxed{}."), std::string::npos);
  EXPECT_EQ(*b.problems[2].subject, "logic");
}

TEST(Benchmark, AimeAndAmcAreReadAndTheirAnswersCompareAsNumbers) {
  SKIP_WITHOUT_SHARED_BENCHMARKS();
  const Benchmark aime = load_benchmark(kBench + "/aime24/test.jsonl", format_for_benchmark("aime24"), FieldMap{}, "auto");
  ASSERT_EQ(aime.problems.size(), 30u);
  EXPECT_TRUE(aime.bad_rows.empty());
  EXPECT_EQ(aime.problems[0].prompt.id, "60");
  EXPECT_NE(user_text(aime.problems[0]).find("Every morning Aya goes for a $9$-kilometer-long walk"), std::string::npos);
  EXPECT_NE(user_text(aime.problems[0]).find("within \\boxed{}."), std::string::npos);
  const Benchmark amc = load_benchmark(kBench + "/amc23/test.jsonl", format_for_benchmark("amc23"), FieldMap{}, "auto");
  ASSERT_EQ(amc.problems.size(), 40u);
  EXPECT_TRUE(amc.bad_rows.empty());
  EXPECT_EQ(amc.problems[0].prompt.answer, "27.0");
  // Scoring as users box the answers: AIME's "025" is 25; AMC's 27.0 is 27.
  int leading_zero = 0;
  for (const Problem& p : aime.problems)
    if (p.prompt.answer.size() == 3 && p.prompt.answer[0] == '0') {
      ++leading_zero;
      const std::string boxed = "\\boxed{" + p.prompt.answer.substr(1) + "}";
      EXPECT_EQ(score_answer(boxed, p.prompt.answer, {}, false, {}).reward, 1.0) << p.prompt.answer;
      EXPECT_EQ(score_answer("\\boxed{1" + p.prompt.answer + "}", p.prompt.answer, {}, false, {}).reward, 0.0);
    }
  EXPECT_EQ(leading_zero, 7);
  EXPECT_EQ(score_answer("\\boxed{27}", amc.problems[0].prompt.answer, {}, false, {}).reward, 1.0);
  EXPECT_EQ(score_answer("\\boxed{27.5}", amc.problems[0].prompt.answer, {}, false, {}).reward, 0.0);
  EXPECT_EQ(format_for_benchmark("math500"), "math500");
  EXPECT_EQ(format_for_benchmark("gsm8k"), "generic");
}

TEST(Benchmark, MmmuProReadsPythonListOptionsAndImageTags) {
  SKIP_WITHOUT_SHARED_BENCHMARKS();
  const Benchmark all = load_benchmark(kBench + "/mmmu_pro/standard_10_options.jsonl", format_for_benchmark("mmmu_pro"),
                                       FieldMap{}, "auto");
  EXPECT_EQ(all.problems.size() + all.bad_rows.size(), 1730u);
  EXPECT_TRUE(all.bad_rows.empty()) << all.bad_rows[0].reason;
  size_t ten = 0;
  for (const Problem& p : all.problems) ten += p.options.size() == 10;
  EXPECT_EQ(ten, 1214u);  // the README's count
  // With their images: each <image N> tag is the N-th image, in place.
  const Benchmark b = load_benchmark(kBench + "/mmmu_pro/sample_with_images.jsonl", "mmmu_pro", FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 11u);
  EXPECT_TRUE(b.bad_rows.empty());
  const Problem& p = b.problems[0];
  EXPECT_EQ(p.options.size(), 10u);
  EXPECT_EQ(p.options[0], "The patient has a ruptured esophagus");
  EXPECT_EQ(p.prompt.answer, "A");
  ASSERT_EQ(p.prompt.images.size(), 1u);
  const std::string text = user_text(p);
  EXPECT_NE(text.find("The patient has: <IMG>"), std::string::npos) << text;
  EXPECT_EQ(text.find("<image"), std::string::npos) << text;
  EXPECT_NE(text.find("J. Developed a severe allergic reaction."), std::string::npos) << text;
  EXPECT_EQ(score_answer("\\boxed{(A) The patient has a ruptured esophagus}", p.prompt.answer, p.options, false, {}).reward, 1.0);
  EXPECT_EQ(score_answer("\\boxed{J}", p.prompt.answer, p.options, false, {}).reward, 0.0);
}

TEST(Benchmark, BadRowsAreCountedAndNamedNotThrown) {
  const Benchmark b = load_benchmark(kOurs + "/bad_rows.jsonl", "generic", FieldMap{}, "none");
  ASSERT_EQ(b.problems.size(), 2u);
  ASSERT_EQ(b.bad_rows.size(), 4u);
  EXPECT_EQ(b.bad_rows[0].line, 2);
  EXPECT_EQ(b.bad_rows[0].reason.rfind("not valid JSON (parse error at line 1", 0), 0u) << b.bad_rows[0].reason;
  EXPECT_EQ(b.bad_rows[1].line, 3);
  EXPECT_EQ(b.bad_rows[1].reason, "no answer");
  EXPECT_EQ(b.bad_rows[2].line, 4);
  EXPECT_NE(b.bad_rows[2].reason.find("images/missing.png: no such file"), std::string::npos);
  EXPECT_EQ(b.bad_rows[3].line, 5);
  // An answer given as an option's text becomes its letter.
  EXPECT_EQ(b.problems[1].prompt.answer, "B");
  EXPECT_EQ(user_text(b.problems[1]), "Which is larger?\n\nOptions:\nA. $\\frac{1}{2}$\nB. $\\frac{2}{3}$");
  EXPECT_THROW(load_benchmark(kOurs + "/nothing.jsonl", "generic", FieldMap{}, "auto"), Error);
  EXPECT_THROW(load_benchmark(kOurs + "/bad_rows.jsonl", "gsm8k", FieldMap{}, "auto"), ConfigError);
}

TEST(Benchmark, ADirectoryOrAMissingFileIsNamed) {
  try {
    load_benchmark(kOurs, "generic", FieldMap{}, "none");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tests/fixtures/eval: is a directory (expected a JSONL file)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_benchmark(kOurs + "/none.jsonl", "generic", FieldMap{}, "none"), Error);
}

TEST(Benchmark, GenericFieldMapRenamesFields) {
  const std::string path = ::testing::TempDir() + "/generic.jsonl";
  std::ofstream(path) << R"({"uid": 7, "q": "Compute 2^5.", "final": 32, "cat": "powers"})" "\n"
                      << R"({"uid": 8, "msgs": [{"role": "user", "content": "Say 4."}], "final": "4"})" "\n";
  const Benchmark b = load_benchmark(path, "generic", parse_field_map("id=uid,question=q,answer=final,subject=cat,messages=msgs"), "Box it.");
  ASSERT_EQ(b.problems.size(), 2u);
  EXPECT_EQ(b.problems[0].prompt.id, "7");
  EXPECT_EQ(b.problems[0].prompt.answer, "32");
  EXPECT_EQ(*b.problems[0].subject, "powers");
  EXPECT_FALSE(b.problems[0].level);
  EXPECT_EQ(user_text(b.problems[0]), "Compute 2^5.\nBox it.");
  EXPECT_EQ(user_text(b.problems[1]), "Say 4.\nBox it.");
  EXPECT_THROW(parse_field_map("question"), ConfigError);
  EXPECT_THROW(parse_field_map("problem=question"), ConfigError);
}

TEST(Benchmark, ChosenOptionReadsLettersAndOptionTexts) {
  const std::vector<std::string> options = {"$\\frac{6-\\sqrt{2}}{2}$", "2.5", "3"};
  EXPECT_EQ(chosen_option("B", options), "B");
  EXPECT_EQ(chosen_option("(C)", options), "C");
  EXPECT_EQ(chosen_option("A. 3", options), "A");
  EXPECT_EQ(chosen_option("\\text{D}", options), "D");
  EXPECT_EQ(chosen_option("5/2", options), "B");  // equals option B's value
  EXPECT_EQ(chosen_option("3.0", options), "C");
  EXPECT_EQ(chosen_option("7", options), "");
  EXPECT_EQ(chosen_option("", options), "");
  // The wrappings models write, on rows whose options are text.
  EXPECT_EQ(chosen_option("\\textbf{(B)}", options), "B");
  EXPECT_EQ(chosen_option("(B) 2.5", options), "B");
  EXPECT_EQ(chosen_option("B) 2.5", options), "B");
  EXPECT_EQ(chosen_option("\\text{Option C}", options), "C");
  EXPECT_EQ(chosen_option("Answer: C", options), "C");
  EXPECT_EQ(chosen_option("\\frac{6-\\sqrt{2}}{2}", options), "A");  // the option's text alone
  // A bare letter that is another option's text is no choice; a labelled one is.
  const std::vector<std::string> letters_as_text = {"C", "A", "B", "D"};
  EXPECT_EQ(chosen_option("A", letters_as_text), "");
  EXPECT_EQ(chosen_option("(A)", letters_as_text), "A");
  EXPECT_EQ(chosen_option("D", letters_as_text), "D");  // option D's text is its own letter
  // Options that are only their letters (MATH-Vision's letter rows).
  EXPECT_EQ(chosen_option("\\textbf{(B)}", {"A", "B", "C"}), "B");
  // Equal to two options' texts: no choice.
  EXPECT_EQ(chosen_option("2", {"2", "4/2", "3"}), "");
}

TEST(Scores, PassAtIsTheUnbiasedEstimator) {
  for (int n : {1, 4, 16})
    for (int c = 0; c <= n; ++c)
      for (int j = 1; j <= n; ++j)
        EXPECT_NEAR(pass_at(n, c, j), 1.0 - binomial(n - c, j) / binomial(n, j), 1e-12) << n << " " << c << " " << j;
  EXPECT_DOUBLE_EQ(pass_at(4, 1, 1), 0.25);
  EXPECT_DOUBLE_EQ(pass_at(4, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(pass_at(4, 1, 4), 1.0);
}

TEST(Scores, MajorityVoteGroupsEquivalentAnswers) {
  EXPECT_EQ(majority_index({"1/2", "3", "0.5", "\\frac{1}{2}", "3"}), 0);
  EXPECT_EQ(majority_index({"", "", "7", "", "8", "8"}), 4);  // no answer does not vote
  EXPECT_EQ(majority_index({"2", "3"}), 0);                   // tie: the earliest
  EXPECT_EQ(majority_index({"", ""}), 0);
  EXPECT_EQ(majority_index({}), -1);
}

TEST(Scores, SummaryHasAvgPassMajAndBreakdowns) {
  auto row = [](int r, int s, double score, const char* ext, const char* subj, bool image) {
    return nlohmann::json{{"row", r}, {"sample", s}, {"score", score}, {"extracted", ext}, {"subject", subj},
                          {"level", nullptr}, {"has_image", image}, {"response_tokens", 10}, {"finish_reason", s == 3 ? "length" : "eos"}};
  };
  std::vector<nlohmann::json> rows;
  // problem 1 (algebra, text): 1 of 4 right, majority wrong; problem 2 (geometry, image): 3 of 4, majority right.
  for (int s = 0; s < 4; ++s) rows.push_back(row(1, s, s == 2 ? 1 : 0, s == 2 ? "5" : "6", "algebra", false));
  for (int s = 0; s < 4; ++s) rows.push_back(row(9, s, s == 0 ? 0 : 1, s == 0 ? "" : "2", "geometry", true));
  const nlohmann::json sum = summarize(rows, 4);
  EXPECT_EQ(sum["problems"], 2);
  EXPECT_EQ(sum["samples"], 8);
  EXPECT_EQ(sum["text_problems"], 1);
  EXPECT_EQ(sum["image_problems"], 1);
  EXPECT_DOUBLE_EQ(sum["avg_at_k"].get<double>(), 4.0 / 8.0);
  EXPECT_DOUBLE_EQ(sum["pass_at"]["1"].get<double>(), (0.25 + 0.75) / 2);
  EXPECT_DOUBLE_EQ(sum["pass_at"]["2"].get<double>(), (pass_at(4, 1, 2) + 1.0) / 2);
  EXPECT_DOUBLE_EQ(sum["pass_at"]["4"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(sum["pass_at_k"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(sum["maj_at_k"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(sum["truncated"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(sum["by_subject"]["geometry"]["maj_at_k"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(sum["by_subject"]["algebra"]["avg_at_k"].get<double>(), 0.25);
  EXPECT_FALSE(sum.contains("by_level"));
  rows.pop_back();
  EXPECT_THROW(summarize(rows, 4), Error);  // a problem without all its samples
}
