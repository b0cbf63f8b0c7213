#include "common/seeded_order.h"

#include <cstddef>
#include <utility>

namespace ovr {

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  uint64_t state = seed * 0x100000001B3ull ^ uint64_t(epoch);
  for (int64_t i = n - 1; i > 0; --i) {
    // Unbiased index in [0, i] by rejection (i + 1 is far below 2^64, so rejections are rare).
    const uint64_t range = uint64_t(i) + 1, limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = splitmix64(&state); while (r >= limit);
    std::swap(order[size_t(i)], order[size_t(r % range)]);
  }
  return order;
}

}  // namespace ovr
