// ovr_sft: the language-only cold-start SFT (stage 1 of the paper). The algorithm is in
// src/train/sft_trainer.h.
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "train/sft_trainer.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("ovr_sft", argc, argv, [](int ac, char** av) {
    Config cfg("ovr_sft", "mpirun -n N ovr_sft --init MODEL --data train.jsonl --output DIR [options]",
               "Supervised fine-tuning of a Qwen2.5-VL checkpoint on JSONL conversations (loss on assistant tokens),\n"
               "data-parallel with ZeRO-1/2 AdamW. Resumes from DIR/latest when it exists. Exit status 75 after a\n"
               "stop signal (SIGTERM, SIGUSR1) or --stop-after-steps: a checkpoint was written, requeue the job.");
    train::add_sft_options(cfg);
    if (!cfg.parse(ac, av)) return int(kExitOk);
    return train::run_sft(cfg);
  });
}
