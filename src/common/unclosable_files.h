// A file library (HDF5) that still holds a file it could not close cleanly (a failed write or
// close on a full disk) would close it again inside MPI_Finalize or at exit: collectively, with
// the ranks' states diverged (a hang), or on a half-torn object (a segfault). A writer that gives
// such a file up says so here, and run_main then ends the process without MPI_Finalize or exit
// handlers (_exit), after its error line and once every rank has failed.
#pragma once

namespace ovr {

void mark_unclosable_file();
bool has_unclosable_file();

}  // namespace ovr
