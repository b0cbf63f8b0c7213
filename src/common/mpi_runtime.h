// MPI runtime: init/finalize around main, rank/size queries, and the one error path every
// executable shares (print one line, exit with a documented code, never leave ranks hanging).
#pragma once
#include <initializer_list>
#include <mpi.h>

#include <functional>
#include <string>

namespace ovr {

int world_rank();
int world_size();

// Sums each value over the ranks of MPI_COMM_WORLD in place (one MPI_Allreduce for all): the
// figures a trainer reports, named at the call site instead of indexed in an array.
void sum_over_ranks(std::initializer_list<double*> values);

// Checks an MPI return code where the call is made; throws ovr::Error with MPI's own message.
void mpi_check(int rc, const char* call, const char* file, int line);
#define OVR_MPI_CHECK(call) ::ovr::mpi_check((call), #call, __FILE__, __LINE__)

// Runs `body` between MPI_Init and MPI_Finalize and turns exceptions into exit codes:
//  - ConfigError (and Boost.Program_options errors): every rank saw the same bad option, so rank 0
//    prints "PROGRAM: error: ..." and all ranks exit with kExitUsage;
//  - any other exception: the failing rank prints its error line (with its rank when there are
//    several) and, if other ranks exist, aborts the communicator so none of them stays blocked in
//    a collective; alone, it returns kExitFailure.
int run_main(const char* program, int argc, char** argv, const std::function<int(int, char**)>& body);

// The program name given to run_main (for messages).
const std::string& program_name();

}  // namespace ovr
