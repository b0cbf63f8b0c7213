// GAE: the CPU twin, rl::gae's sequential loop per sequence, sequences shared out over OpenMP threads.
#include <stdexcept>
#include <string>

#include "gae.h"

namespace ovr::kernels {

void gae_cpu(const GaeArgs& a) {
  check_gae_args(a);
  const int64_t* off = a.offsets;
  if (off[0] != 0 || off[a.sequences] != a.n)
    throw std::invalid_argument("gae: offsets must run from 0 to the token count (" + std::to_string(a.n) + ")");
  for (int64_t i = 0; i < a.sequences; ++i)
    if (off[i + 1] < off[i]) throw std::invalid_argument("gae: offsets must be non-decreasing (sequence " + std::to_string(i) + ")");
  const double c = a.gamma * a.lambda;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < a.sequences; ++i) {
    double next_value = 0, next_advantage = 0;  // past the last token: terminal
    for (int64_t t = off[i + 1] - 1; t >= off[i]; --t) {
      const double v = a.values[t];
      const double delta = a.rewards[t] + a.gamma * next_value - v;
      const double adv = delta + c * next_advantage;
      a.advantages[t] = float(adv);
      a.returns[t] = float(adv + v);
      next_value = v;
      next_advantage = adv;
    }
  }
}

}  // namespace ovr::kernels
