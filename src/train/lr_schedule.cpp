#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace ovr::train {

void LrSchedule::validate() const {
  if (kind != "cosine" && kind != "linear" && kind != "constant")
    throw ConfigError("--lr-schedule: expected cosine, linear or constant, got '" + kind + "'");
  if (!(lr > 0) || !std::isfinite(lr)) throw ConfigError("--lr: must be a positive number");
  if (warmup_steps < 0) throw ConfigError("--warmup-steps: must be >= 0");
  if (min_lr_ratio < 0 || min_lr_ratio > 1) throw ConfigError("--min-lr-ratio: must be in [0, 1]");
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * double(step) / double(std::max<int64_t>(1, warmup_steps));
  if (kind == "constant") return lr;
  const double progress =
      std::min(1.0, double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps)));
  const double factor = kind == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  const double floor = lr * min_lr_ratio;
  return floor + (lr - floor) * std::max(0.0, factor);
}

}  // namespace ovr::train
