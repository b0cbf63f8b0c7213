// Learning-rate schedules: linear warm-up, then cosine, linear or constant decay, as Hugging
// Face's get_{cosine,linear,constant}_schedule_with_warmup compute them (so runs compare with
// TRL/verl/OpenRLHF), with an optional floor (min_lr_ratio * lr).
//   step < warmup:  lr * step / warmup                (the first step, step 0, has lr 0)
//   after:          progress p = (step - warmup) / (total - warmup)
//                   cosine: floor + (lr - floor) * 0.5 * (1 + cos(pi * p));  linear: ... * (1 - p)
#pragma once
#include <cstdint>
#include <string>

namespace ovr::train {

struct LrSchedule {
  std::string kind = "cosine";  // cosine | linear | constant
  double lr = 1e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.0;

  double at(int64_t step) const;  // step: 0-based index of the optimizer step about to be taken
  void validate() const;          // ConfigError naming the bad value
};

}  // namespace ovr::train
