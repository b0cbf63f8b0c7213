// The RL curriculum: which prompts iteration k draws, and the response-length limit per iteration.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ovr::rl {

// The rows of iteration k: positions [k*per_iteration, (k+1)*per_iteration) of an endless
// stream of epochs, each a seeded shuffle of all rows (the same on any number of ranks).
std::vector<int64_t> iteration_rows(int64_t rows, int64_t per_iteration, int64_t iteration, uint64_t seed);

// "0:24576,300:32768,700:49152": from iteration 0 the limit is 24576, from 300 on 32768, ...
struct LengthSchedule {
  std::vector<std::pair<int64_t, int64_t>> points;  // (first iteration, max new tokens), increasing
  int64_t at(int64_t iteration) const;
};
LengthSchedule parse_length_schedule(const std::string& text);  // ConfigError on bad text

}  // namespace ovr::rl
