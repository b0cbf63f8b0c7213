// ovr_rollout: sampling and rewards of one RL iteration (src/rl/rollout.h).
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "rl/rollout.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("ovr_rollout", argc, argv, [](int ac, char** av) {
    Config cfg("ovr_rollout", "mpirun -n N ovr_rollout --policy CKPT --prompts prompts.jsonl --output rollouts/iter_K.h5 --iteration K",
               "Samples n responses for each of the iteration's prompts, scores them with the verifiable math reward\n"
               "and writes one rollout file (docs/rollout-format.md) collectively. Per-sequence random streams: the same\n"
               "seed and iteration give the same rollouts on any number of ranks.");
    rl::add_rollout_options(cfg);
    if (!cfg.parse(ac, av)) return int(kExitOk);
    return rl::run_rollout(cfg);
  });
}
