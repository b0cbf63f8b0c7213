// One run per output directory. Two runs writing one directory (a rerun started while the first
// still runs, or ranks of a killed mpirun still alive) would mix their checkpoints and metrics.
// Rank 0 holds an exclusive flock(2) on DIR/.ovr-lock for the run's whole life; the kernel drops it
// when the process ends in any way (kill -9 included), so a lock is never left stale. The file
// records who holds it (program, host, pid, start time) for the message a second run gets.
// On a filesystem without flock (Lustre mounted without -o flock) the run warns and goes on unlocked.
#pragma once
#include <mpi.h>

#include <string>

namespace ovr::io {

class RunLock {
 public:
  // Collective over comm: creates DIR if needed; throws ovr::Error on every rank, naming the
  // holder, when another process holds the lock.
  RunLock(const std::string& dir, MPI_Comm comm);
  // Releases the lock; a directory this lock created and the run left empty is removed again (a
  // run that failed before writing leaves no folder behind).
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  std::string dir_;
  int fd_ = -1;
  bool created_dir_ = false;
};

}  // namespace ovr::io
