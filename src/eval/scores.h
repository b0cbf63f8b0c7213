// The evaluation's figures from per-sample scores: avg@k, the unbiased pass@j of Chen et al.
// (2021), majority vote, and their breakdown by subject and level. Torch-free.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ovr::eval {

// 1 - C(n - c, j) / C(n, j): the chance that at least one of j samples drawn without
// replacement from n samples with c correct is correct (computed as a stable product).
double pass_at(int n, int c, int j);

// Index of the majority answer among `answers`: answers are grouped by reward::answers_equivalent
// (so 0.5 and \frac{1}{2} vote together); empty answers (none extracted) do not vote unless all
// are empty; ties go to the group whose first member came first. -1 for an empty list.
int majority_index(const std::vector<std::string>& answers);

// The summary of docs/eval-format.md from the results lines (one JSON object per sample with
// row, sample, score, extracted, subject, level, has_image, response_tokens, finish_reason),
// in any order. Problems are the distinct rows; every problem must have the same k samples.
nlohmann::json summarize(const std::vector<nlohmann::json>& results, int k);

// The fields of a results line that summarize() reads, without the prompt and response texts: what
// each rank sends to rank 0 (a few dozen bytes per sample instead of the whole response).
nlohmann::json summary_fields(const nlohmann::json& result);

}  // namespace ovr::eval
