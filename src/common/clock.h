// Seconds on the monotonic clock, for the time a piece of work took (never for dates).
#pragma once
#include <chrono>

namespace ovr {

inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ovr
