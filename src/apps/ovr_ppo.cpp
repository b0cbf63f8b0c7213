// ovr_ppo: the PPO update of one RL iteration (src/rl/ppo_trainer.h).
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "rl/ppo_trainer.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("ovr_ppo", argc, argv, [](int ac, char** av) {
    Config cfg("ovr_ppo",
               "mpirun -n N ovr_ppo --policy policy/step_K.h5 [--critic critic/step_K.h5] --rollouts rollouts/iter_K.h5 "
               "--policy-output policy --critic-output critic [--advantage gae|grpo|rloo]",
               "One PPO iteration: advantages by GAE with a critic (default, the paper's) or by GRPO / RLOO over each\n"
               "prompt's samples (no critic); clipped surrogate (and clipped value loss), ZeRO AdamW; writes\n"
               "critic/step_{K+1}.h5 (gae) then policy/step_{K+1}.h5.");
    rl::add_ppo_options(cfg);
    if (!cfg.parse(ac, av)) return int(kExitOk);
    return rl::run_ppo(cfg);
  });
}
