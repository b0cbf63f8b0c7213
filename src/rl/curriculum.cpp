#include "rl/curriculum.h"

#include <cstdlib>

#include "common/error.h"
#include "common/seeded_order.h"

namespace ovr::rl {

std::vector<int64_t> iteration_rows(int64_t rows, int64_t per_iteration, int64_t iteration, uint64_t seed) {
  std::vector<int64_t> out, order;
  int64_t have_epoch = -1;
  for (int64_t pos = iteration * per_iteration; pos < (iteration + 1) * per_iteration; ++pos) {
    const int64_t epoch = pos / rows;
    if (epoch != have_epoch) order = epoch_order(rows, seed, epoch), have_epoch = epoch;
    out.push_back(order[size_t(pos % rows)]);
  }
  return out;
}

int64_t LengthSchedule::at(int64_t iteration) const {
  int64_t v = points.front().second;
  for (const auto& [from, limit] : points)
    if (iteration >= from) v = limit;
  return v;
}

LengthSchedule parse_length_schedule(const std::string& text) {
  LengthSchedule s;
  size_t a = 0;
  while (a <= text.size()) {
    const size_t b = std::min(text.find(',', a), text.size());
    const std::string item = text.substr(a, b - a);
    const size_t colon = item.find(':');
    char* end = nullptr;
    bool ok = colon != std::string::npos;
    long long from = 0, limit = 0;
    if (ok) {
      from = std::strtoll(item.c_str(), &end, 10);
      ok = end == item.c_str() + colon;
      limit = std::strtoll(item.c_str() + colon + 1, &end, 10);
      ok = ok && *end == '\0' && colon + 1 < item.size() && from >= 0 && limit > 0;
    }
    if (!ok || (!s.points.empty() && from <= s.points.back().first))
      throw ConfigError("--length-schedule: expected ITERATION:MAX_TOKENS,... with increasing iterations, got '" + text + "'");
    s.points.emplace_back(from, limit);
    a = b + 1;
  }
  if (s.points.front().first != 0) throw ConfigError("--length-schedule: must start at iteration 0, got '" + text + "'");
  return s;
}

}  // namespace ovr::rl
