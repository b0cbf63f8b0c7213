// The benchmark formats of the paper's table beyond MATH500/MATH-Vision/AIME/AMC/MMMU-Pro, on real
// rows of their published files (../shared/fixtures; skipped where absent): MathVista (choices as
// text, per-row precision), MathVerse (choices inside the question, problem versions, the
// visualizer's images), DynaMath (choices inside the question), and the option parser itself.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/benchmark.h"
#include "eval/benchmark_formats.h"
#include "eval_test_util.h"
#include "text/chat_template.h"

using namespace ovr;
using namespace ovr::eval;

namespace {

const std::string kBench = test::shared_benchmarks();
using test::user_text;
#define SKIP_WITHOUT(file) SKIP_WITHOUT_SHARED(file)

double score(const std::string& boxed, const Problem& p) { return score_problem("\\boxed{" + boxed + "}", p, false, {}).reward; }

const Problem& by_id(const Benchmark& b, const std::string& id) {
  for (const Problem& p : b.problems)
    if (p.prompt.id == id) return p;
  throw std::runtime_error("no problem " + id);
}

// The rows of `file` whose id field is in `ids`, with "image" pointing at one of our test images
// (MathVista's images are not published where we can reach them).
std::string rows_with_our_image(const std::string& file, const std::string& id_field, const std::vector<std::string>& ids) {
  const std::string dir = ::testing::TempDir() + "ovr_eval_formats";
  std::filesystem::create_directories(dir);
  const std::string out_path = dir + "/rows.jsonl";
  std::ifstream in(file);
  std::ofstream out(out_path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (std::find(ids.begin(), ids.end(), j[id_field].get<std::string>()) == ids.end()) continue;
    j["image"] = std::string(OVR_TEST_FIXTURES) + "/image_processor/images/pattern_56x84.png";
    out << j.dump() << "\n";
  }
  return out_path;
}

}  // namespace

TEST(MathVista, EveryRowIsReadAndNamesItsMissingImage) {
  SKIP_WITHOUT("mathvista/testmini.jsonl");
  const Benchmark b = load_benchmark(kBench + "/mathvista/testmini.jsonl", format_for_benchmark("mathvista_testmini"),
                                     FieldMap{}, "auto");
  // The published file has no images: each of the 1000 rows is a bad row that says which file.
  ASSERT_EQ(b.bad_rows.size(), 1000u);
  EXPECT_TRUE(b.problems.empty());
  EXPECT_NE(b.bad_rows[0].reason.find("mathvista/images/1.jpg: no such file"), std::string::npos) << b.bad_rows[0].reason;
}

TEST(MathVista, ChoicesAreTextAndThePrecisionOfARowIsItsOwn) {
  SKIP_WITHOUT("mathvista/testmini.jsonl");
  const Benchmark b = load_benchmark(rows_with_our_image(kBench + "/mathvista/testmini.jsonl", "pid", {"1", "3", "5", "108", "506"}),
                                     "mathvista", FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 5u);
  EXPECT_TRUE(b.bad_rows.empty());
  // pid 1: a float given to 1 decimal place ("1.2"): 1.24 rounds to it, 1.3 does not; no options.
  const Problem& p1 = by_id(b, "1");
  ASSERT_TRUE(p1.decimal_places.has_value());
  EXPECT_EQ(*p1.decimal_places, 1);
  EXPECT_EQ(*p1.subject, "textbook question answering");
  EXPECT_EQ(*p1.level, "college");
  EXPECT_EQ(p1.prompt.images.size(), 1u);
  EXPECT_EQ(user_text(p1).rfind("<IMG>When a spring does work", 0), 0u) << user_text(p1);
  EXPECT_EQ(score("1.2", p1), 1.0);
  EXPECT_EQ(score("1.24", p1), 1.0);
  EXPECT_EQ(score("1.3", p1), 0.0);
  // pid 108: 2 places ("51.04").
  EXPECT_EQ(score("51.04", by_id(b, "108")), 1.0);
  EXPECT_EQ(score("51.0", by_id(b, "108")), 0.0);
  // pid 3: choices 135°, 140°, 145°, 150°; the answer is the text "145°", i.e. option C.
  const Problem& p3 = by_id(b, "3");
  EXPECT_EQ(p3.options.size(), 4u);
  EXPECT_EQ(p3.prompt.answer, "C");
  EXPECT_NE(user_text(p3).find("Options:\nA. 135°\nB. 140°\nC. 145°\nD. 150°\nPlease reason"), std::string::npos);
  EXPECT_EQ(score("C", p3), 1.0);
  EXPECT_EQ(score("\\textbf{(C)}", p3), 1.0);
  EXPECT_EQ(score("145°", p3), 1.0);
  EXPECT_EQ(score("B", p3), 0.0);
  // pid 5: numeric option texts, answer "97" = A; the number alone picks the option.
  EXPECT_EQ(by_id(b, "5").prompt.answer, "A");
  EXPECT_EQ(score("97", by_id(b, "5")), 1.0);
  EXPECT_EQ(score("102", by_id(b, "5")), 0.0);
  // pid 506: a list answer.
  EXPECT_EQ(score("[2014, 2016]", by_id(b, "506")), 1.0);
  EXPECT_EQ(score("[2014, 2015]", by_id(b, "506")), 0.0);
}

TEST(MathVerse, TextOnlyRowsReadTheirChoicesFromTheQuestion) {
  SKIP_WITHOUT("mathverse/testmini_text_only.jsonl");
  const Benchmark b = load_benchmark(kBench + "/mathverse/testmini_text_only.jsonl", format_for_benchmark("mathverse"),
                                     FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 788u);
  EXPECT_TRUE(b.bad_rows.empty()) << b.bad_rows[0].reason;
  size_t with_options = 0;
  for (const Problem& p : b.problems) {
    with_options += !p.options.empty();
    EXPECT_TRUE(p.prompt.images.empty());
    EXPECT_EQ(*p.level, "Text Only");
  }
  EXPECT_EQ(with_options, 436u);  // every multi-choice row
  const Problem& p1 = by_id(b, "1");
  EXPECT_EQ(p1.options, (std::vector<std::string>{"40°", "60°", "120°", "140°"}));
  EXPECT_EQ(p1.prompt.answer, "D");
  EXPECT_EQ(*p1.subject, "Plane Geometry");
  // The choices stay as the question writes them, not listed twice.
  EXPECT_EQ(user_text(p1).find("Options:"), std::string::npos) << user_text(p1);
  EXPECT_NE(user_text(p1).find("D:140°\nPlease reason step by step, and put the letter"), std::string::npos);
  EXPECT_EQ(score("D", p1), 1.0);
  EXPECT_EQ(score("140°", p1), 1.0);
  EXPECT_EQ(score("A", p1), 0.0);
  // An answer written "(C)" is the letter C; one written as an option's text ("False") is that option.
  size_t letters = 0;
  for (const Problem& p : b.problems) letters += p.prompt.answer.size() == 1 && !p.options.empty();
  EXPECT_GE(letters, 430u);
  EXPECT_EQ(by_id(b, "429").prompt.answer, "B");  // "Choice:\nA. True\nB. False", answer False
  EXPECT_EQ(score("False", by_id(b, "429")), 1.0);
  EXPECT_EQ(score("True", by_id(b, "429")), 0.0);
}

TEST(MathVerse, VisualizerRowsFindTheirImagesAndKeepTheirVersions) {
  SKIP_WITHOUT("mathverse/visualizer_sample.jsonl");
  const Benchmark b = load_benchmark(kBench + "/mathverse/visualizer_sample.jsonl", "mathverse", FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 40u);
  EXPECT_TRUE(b.bad_rows.empty()) << b.bad_rows[0].reason;
  std::map<std::string, int> versions;
  for (const Problem& p : b.problems) {
    ASSERT_EQ(p.prompt.images.size(), 1u);
    EXPECT_EQ(p.prompt.images[0], kBench + "/mathverse/images/" + p.prompt.id + ".png");
    versions[*p.level] += 1;
  }
  EXPECT_EQ(versions.size(), 5u);
  for (const auto& [version, n] : versions) EXPECT_EQ(n, 8) << version;
  // "Vision Only": no text, the question is in the picture.
  EXPECT_EQ(user_text(by_id(b, "634")).rfind("<IMG>Answer the question shown in the image.\nPlease reason", 0), 0u)
      << user_text(by_id(b, "634"));
  const Problem& p = by_id(b, "113");  // answer "=\frac{7}{4}"
  EXPECT_EQ(score("\\frac{7}{4}", p), 1.0);
  EXPECT_EQ(score("1.75", p), 1.0);
  EXPECT_EQ(score("\\frac{4}{7}", p), 0.0);
}

TEST(DynaMath, RowsWithImagesLoadAndChoicesComeFromTheQuestion) {
  SKIP_WITHOUT("dynamath/sample.jsonl");
  const Benchmark b = load_benchmark(kBench + "/dynamath/sample.jsonl", format_for_benchmark("dynamath"), FieldMap{}, "auto");
  ASSERT_EQ(b.problems.size(), 40u);
  EXPECT_TRUE(b.bad_rows.empty()) << b.bad_rows[0].reason;
  size_t choice = 0;
  for (const Problem& p : b.problems) choice += !p.options.empty();
  EXPECT_EQ(choice, 12u);  // the sample's multiple-choice rows
  const Problem& p5 = by_id(b, "5");  // "Choices: (A) yes (B) no", answer B
  EXPECT_EQ(p5.options, (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(p5.prompt.images, (std::vector<std::string>{kBench + "/dynamath/image/image5.png"}));
  EXPECT_EQ(score("B", p5), 1.0);
  EXPECT_EQ(score("no", p5), 1.0);
  EXPECT_EQ(score("A", p5), 0.0);
  const Problem& p1 = by_id(b, "1");  // a float answer, "2.0944"
  EXPECT_TRUE(p1.options.empty());
  EXPECT_EQ(score("2.0944", p1), 1.0);
  EXPECT_EQ(score("2.1", p1), 0.0);
  EXPECT_EQ(*p1.subject, "analytic geometry");
  EXPECT_EQ(*p1.level, "high school");
  // The full file: every row reads; those whose image is not in the fixtures say so.
  const Benchmark all = load_benchmark(kBench + "/dynamath/dataset.jsonl", "dynamath", FieldMap{}, "auto");
  EXPECT_EQ(all.problems.size() + all.bad_rows.size(), 501u);
  EXPECT_EQ(all.problems.size(), 40u);
  for (const BadRow& r : all.bad_rows) EXPECT_NE(r.reason.find("no such file"), std::string::npos) << r.reason;
}

TEST(OptionsInText, ReadsParenthesisedAndLineFormsAfterTheLastChoicesMark) {
  EXPECT_EQ(options_in_text("Is it? Choices: (A) yes (B) no"), (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(options_in_text("Pick (A) here. choice: (A) 2 (B) 1 (C) 0"), (std::vector<std::string>{"2", "1", "0"}));
  EXPECT_EQ(options_in_text("Find x.\nChoices:\nA:40°\nB:60°\nC. 1\n\nMore text"),
            (std::vector<std::string>{"40°", "60°", "1"}));
  EXPECT_EQ(options_in_text("Which group?\nA. Group 1\nB. Group 2"), (std::vector<std::string>{"Group 1", "Group 2"}));
  EXPECT_TRUE(options_in_text("Choices: (A) only one").empty());
  EXPECT_TRUE(options_in_text("No options at all").empty());
  EXPECT_TRUE(options_in_text("Choices:\nB. out of order\nA. x").empty());
}
