// Benchmark files in their published forms (eval/benchmark_formats.h: math500, mathvision, aime,
// amc, mmmu_pro, mathvista, mathverse, dynamath; generic: any JSONL through a field map), turned
// into prompt rows for the generation engine.
//
// The question becomes one user turn: its text with each <imageN> placeholder replaced by the
// N-th image (images no placeholder names go first, as Qwen2.5-VL's examples place them), the
// options listed as "A. ...", and the benchmark's instruction (final answer in \boxed{}).
// A row the evaluator cannot use (malformed JSON, no question, no answer, a missing image file)
// becomes a BadRow with its line and reason, never an exception.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reward/reward.h"
#include "engine/prompt.h"

namespace ovr::eval {

struct Problem {
  engine::PromptRow prompt;                 // messages, images, id, answer (a letter for multiple choice)
  int64_t line = 0;                     // 1-based line in the file
  std::optional<std::string> subject, level;
  std::vector<std::string> options;     // multiple choice: option texts, labelled A, B, ...
  std::optional<int> decimal_places;    // the row's stated precision (MathVista): overrides --decimal-places
};

struct BadRow {
  int64_t line = 0;
  std::string reason;
};

struct Benchmark {
  std::vector<Problem> problems;
  std::vector<BadRow> bad_rows;
};

// Field names of the generic form; "question=problem,answer=final_answer" overrides two of them.
struct FieldMap {
  std::map<std::string, std::string> names = {{"id", "id"},         {"question", "question"}, {"messages", "messages"},
                                               {"image", "image"},   {"images", "images"},     {"answer", "answer"},
                                               {"options", "options"}, {"subject", "subject"}, {"level", "level"}};
  const std::string& operator[](const std::string& key) const { return names.at(key); }
};
FieldMap parse_field_map(const std::string& spec);  // ConfigError on an unknown key or bad syntax

// The instruction appended to a question: `instruction` as given, except "auto" (the default
// for the format: step by step, final answer or option letter in \boxed{}) and "none".
// Throws ConfigError for an unknown format; ovr::Error when the file cannot be opened.
Benchmark load_benchmark(const std::string& path, const std::string& format, const FieldMap& fields,
                         const std::string& instruction);

// The letter of the option a response chose: the letter it names in any common wrapping ("B",
// "(B)", "B)", "B.", "B: ...", "\textbf{(B)}", "\text{Option B}", "Answer: B", "(B) <the option's
// text>"), else the letter of the one option whose text it equals (reward::answers_equivalent);
// "" when neither, when it equals several options, or when a bare letter is also the text of
// another option (then which was meant cannot be told).
std::string chosen_option(const std::string& extracted, const std::vector<std::string>& options);

// The format --format auto picks for a benchmark name: math500, mathvision, aime (aime24, aime25,
// ...), amc (amc23, ...), mmmu_pro, mathvista*, mathverse*, dynamath*, else generic.
std::string format_for_benchmark(const std::string& name);

// The reference of a multiple-choice problem as a letter: a letter as it is, an option's text as
// that option's letter; unchanged without options.
std::string reference_choice(const std::string& answer, const std::vector<std::string>& options);

// One response scored as ovr_eval scores it (ovr_inspect reward too, so the two agree row for row):
// the verifiable reward, and on a multiple-choice problem (options not empty) the chosen letter
// against the reference's letter.
reward::RewardResult score_answer(const std::string& response, const std::string& answer,
                                  const std::vector<std::string>& options, bool truncated, const reward::RewardOptions& opt);
// The options a problem is scored with: `opt`, with the problem's own precision where it states one.
reward::RewardOptions problem_reward_options(const Problem& p, reward::RewardOptions opt);
// score_answer for a problem of a benchmark: its reference, options and precision.
reward::RewardResult score_problem(const std::string& response, const Problem& p, bool truncated,
                                   const reward::RewardOptions& opt);

}  // namespace ovr::eval
