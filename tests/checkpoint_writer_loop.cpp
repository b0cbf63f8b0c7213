// Test helper: writes checkpoints step_1.h5 ... step_N.h5 into DIR, each followed by `latest`,
// and prints "phase NAME STEP" at every point of the write where a crash matters. With
// OVR_TEST_STOP_AT_PHASES=1 it stops itself (SIGSTOP) after each line, so that the test can kill
// it at exactly that point or let it continue.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/hdf5_checkpoint.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("checkpoint_writer_loop", argc, argv, [](int argc, char** argv) {
    if (argc != 4) throw Error("usage: checkpoint_writer_loop DIR STEPS MEGABYTES");
    const std::string dir = argv[1];
    const int steps = std::atoi(argv[2]);
    const int64_t n = int64_t(std::atof(argv[3]) * 1e6 / 4);
    const bool stop = std::getenv("OVR_TEST_STOP_AT_PHASES") != nullptr;
    std::vector<float> data(static_cast<size_t>(n));
    for (int step = 1; step <= steps; ++step) {
      auto phase = [&](const char* name) {
        std::printf("phase %s %d\n", name, step);
        std::fflush(stdout);
        if (stop) raise(SIGSTOP);
      };
      phase("begin");
      io::CheckpointAttrs a;
      a.step = step;
      io::CheckpointWriter w(dir + "/step_" + std::to_string(step) + ".h5", MPI_COMM_SELF, a);
      w.on_phase = phase;
      w.define("/model/w", io::DType::F32, {n});
      w.define("/optim/exp_avg", io::DType::F32, {n});
      for (auto& x : data) x = float(step);
      w.write_rows("/model/w", 0, n, data.data());
      phase("mid-write");
      w.write_shard("/optim/exp_avg", 0, n, data.data());
      w.commit(/*update_latest=*/true);
    }
    return 0;
  });
}
