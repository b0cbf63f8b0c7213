// ovr_eval: one checkpoint on one benchmark (eval/benchmark.h). Each rank takes a contiguous share
// of the problems and samples k responses per problem (greedy by default; per-sequence random
// streams seeded by (seed, file line, sample), so the results do not depend on the number of
// ranks), scores them with the verifiable math reward (multiple choice: the chosen letter), and
// rank 0 writes results.jsonl and summary.json (docs/eval-format.md) and prints the figures.
#pragma once
#include "common/config.h"

namespace ovr::eval {

void add_eval_options(Config& cfg);
int run_eval(const Config& cfg);

}  // namespace ovr::eval
