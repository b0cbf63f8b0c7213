// Preemption: SIGTERM (Slurm's warning before a time limit or preemption; also what `scancel`
// sends) and SIGUSR1 (`sbatch --signal=USR1@300`, forwarded by mpirun) only set a flag. Trainers
// look at it between steps, agree over MPI, write a checkpoint and exit with kExitRequeue.
#pragma once
#include <mpi.h>

namespace ovr {

void install_stop_signals();
bool stop_signal_received();  // on this process
int stop_signal_number();     // the signal that set it (0 if none)
// Collective: true on every rank when any rank received a stop signal.
bool any_rank_stopping(MPI_Comm comm);

}  // namespace ovr
