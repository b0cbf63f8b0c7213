// One rank does the work, every rank learns how it went: for file-system steps (make a folder,
// take a lock, rename a finished file) that one rank must do for all.
#pragma once
#include <mpi.h>

#include <functional>
#include <string>

namespace ovr {

// Runs `fn` on rank 0 of comm and rethrows its error (as ovr::Error, same text) on every rank, so
// that all ranks leave together. Collective.
void on_root_then_share(MPI_Comm comm, const std::function<void()>& fn);

// The error of the lowest rank whose `mine` is not empty, on every rank; "" when no rank failed.
// Collective: writers call it before a step all ranks must take together (a close, a rename).
std::string first_error(MPI_Comm comm, const std::string& mine);

}  // namespace ovr
