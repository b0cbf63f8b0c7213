#include "common/signals.h"

#include <csignal>

#include "common/mpi_runtime.h"

namespace ovr {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a signal must not fail a read or write in progress
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool stop_signal_received() { return g_signal != 0; }
int stop_signal_number() { return int(g_signal); }

bool any_rank_stopping(MPI_Comm comm) {
  int mine = stop_signal_received() ? 1 : 0, any = 0;
  OVR_MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
  return any != 0;
}

}  // namespace ovr
