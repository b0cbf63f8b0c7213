// ovr_eval: a checkpoint on a benchmark (src/eval/evaluate.h).
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "eval/evaluate.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("ovr_eval", argc, argv, [](int ac, char** av) {
    Config cfg("ovr_eval", "mpirun -n N ovr_eval --model CKPT --benchmark math500 --data test.jsonl --output DIR",
               "Evaluates a model on one benchmark file (MATH500, MATH-Vision, or any JSONL through --fields): k samples\n"
               "per problem, scored with the verifiable math reward; writes DIR/results.jsonl (one line per sample) and\n"
               "DIR/summary.json (avg@k, pass@k, maj@k, by subject and level, bad rows): docs/eval-format.md.");
    eval::add_eval_options(cfg);
    if (!cfg.parse(ac, av)) return int(kExitOk);
    return eval::run_eval(cfg);
  });
}
