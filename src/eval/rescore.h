// ovr_eval --rescore: the scores and summary of a finished evaluation recomputed from its saved
// responses with today's rules (a scoring fix, another --min-digits or --decimal-places), no model
// needed. Torch-free.
#pragma once
#include <string>

#include "reward/reward.h"

namespace ovr::eval {

// Reads DIR/results.jsonl and DIR/summary.json (or a results.jsonl path and the summary.json beside
// it), scores every saved response again with `opt` (multiple-choice rows through the options of the
// benchmark file the summary names, which must still be readable), and writes results.jsonl and
// summary.json into `output` (DIR itself when empty), each atomically. The summary keeps the run's
// model and sampling fields, takes the new figures, and records the rules under "rescored".
// Returns the new summary's avg@k.
double rescore(const std::string& dir_or_results, const std::string& output, const reward::RewardOptions& opt);

}  // namespace ovr::eval
