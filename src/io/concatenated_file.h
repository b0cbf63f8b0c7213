// One text file written by every rank at once: each rank's bytes at its offset (64-bit, any size),
// as ovr_eval writes results.jsonl, so that no rank ever holds the whole file.
#pragma once
#include <mpi.h>

#include <string>

namespace ovr::io {

// Every rank's `mine`, concatenated in rank order, becomes `path`: rank 0 creates path.tmp, each
// rank pwrites its bytes at its offset and fsyncs (on a parallel filesystem each node caches its
// own part), and only when every rank succeeded does rank 0 rename it into place. A failure on any
// rank (a full disk) throws the same error on every rank and leaves nothing under `path`.
// Collective.
void write_concatenated(const std::string& path, MPI_Comm comm, const std::string& mine);

}  // namespace ovr::io
