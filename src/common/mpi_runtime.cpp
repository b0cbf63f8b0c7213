#include "common/mpi_runtime.h"

#include <unistd.h>

#include <algorithm>
#include <boost/program_options/errors.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "common/root_then_share.h"
#include "common/unclosable_files.h"

namespace ovr {

namespace {
std::string g_program = "ovr";
MPI_Comm g_error_comm = MPI_COMM_NULL;  // used only by the error path, so it never meets a job collective

// After an exception: do all ranks fail? Each failing rank joins a non-blocking barrier on the
// error communicator and waits a few seconds. If every rank joins (a bad input file seen by all,
// say), the job can end cleanly with one error line; otherwise a rank is still busy, possibly
// blocked in a collective waiting for us, and only MPI_Abort can end it.
bool g_unclosable_file = false;

bool all_ranks_failed(double wait_seconds) {
  MPI_Request req;
  if (MPI_Ibarrier(g_error_comm, &req) != MPI_SUCCESS) return false;
  const double until = MPI_Wtime() + wait_seconds;
  int done = 0;
  while (!done && MPI_Wtime() < until) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (!done) usleep(2000);
  }
  return done != 0;
}

// Rank 0 prints each distinct message once, with the ranks that reported it when they differ.
void print_gathered(const char* program, const std::string& mine, int rank, int size) {
  int len = int(mine.size());
  std::vector<int> lens(static_cast<size_t>(size));
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, g_error_comm);
  std::vector<int> displs(static_cast<size_t>(size), 0);
  for (int r = 1; r < size; ++r) displs[size_t(r)] = displs[size_t(r) - 1] + lens[size_t(r) - 1];
  std::string all(rank == 0 ? size_t(displs.back() + lens.back()) : 0, '\0');
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0, g_error_comm);
  if (rank != 0) return;
  std::vector<std::pair<std::string, std::string>> distinct;  // message, ranks
  for (int r = 0; r < size; ++r) {
    std::string m = all.substr(size_t(displs[size_t(r)]), size_t(lens[size_t(r)]));
    auto it = std::find_if(distinct.begin(), distinct.end(), [&](const auto& d) { return d.first == m; });
    if (it == distinct.end()) distinct.push_back({m, std::to_string(r)});
    else it->second += "," + std::to_string(r);
  }
  for (const auto& [m, ranks] : distinct) {
    if (distinct.size() == 1) std::fprintf(stderr, "%s: error: %s\n", program, m.c_str());
    else std::fprintf(stderr, "%s: error (ranks %s): %s\n", program, ranks.c_str(), m.c_str());
  }
  std::fflush(stderr);
}
}  // namespace

const std::string& program_name() { return g_program; }

int world_rank() {
  int initialized = 0, rank = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int initialized = 0, size = 1;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

void sum_over_ranks(std::initializer_list<double*> values) {
  std::vector<double> v;
  for (double* x : values) v.push_back(*x);
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  size_t i = 0;
  for (double* x : values) *x = v[i++];
}

void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI error in ") + call + " (" + file + ":" + std::to_string(line) + "): " +
              std::string(msg, size_t(len)));
}

void on_root_then_share(MPI_Comm comm, const std::function<void()>& fn) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  if (rank == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  int len = int(error.size());
  OVR_MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT, 0, comm));
  if (len == 0) return;
  error.resize(size_t(len));
  OVR_MPI_CHECK(MPI_Bcast(error.data(), len, MPI_CHAR, 0, comm));
  throw Error(error);
}

std::string first_error(MPI_Comm comm, const std::string& mine) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int first = mine.empty() ? size : rank;
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm));
  if (first == size) return "";
  std::string message = mine;
  int len = int(message.size());
  OVR_MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT, first, comm));
  message.resize(size_t(len));
  OVR_MPI_CHECK(MPI_Bcast(message.data(), len, MPI_CHAR, first, comm));
  return message;
}

void mark_unclosable_file() { g_unclosable_file = true; }
bool has_unclosable_file() { return g_unclosable_file; }

int run_main(const char* program, int argc, char** argv, const std::function<int(int, char**)>& body) {
  g_program = program;
  int provided = 0;
  // Under mpirun, a rank ends with its launcher: killed with -9, mpirun cannot take its ranks down,
  // and ranks left running would overlap a rerun on the same files. (Not for a plain start from a
  // shell: `nohup ovr_sft &` must outlive the shell.)
  // A watcher thread, not PR_SET_PDEATHSIG: that fires when the launcher's *thread* that forked
  // the rank ends, which may be long before the launcher does.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK")) {
    const pid_t launcher = getppid();
    std::thread([launcher] {
      while (getppid() == launcher) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      _exit(kExitFailure);  // reparented: the launcher is gone
    }).detach();
  }
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  // Return MPI errors as codes (checked by OVR_MPI_CHECK) instead of MPI's default abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  const int rank = world_rank(), size = world_size();
  MPI_Comm_dup(MPI_COMM_WORLD, &g_error_comm);
  auto error_line = [&](const char* what) {
    if (size > 1)
      std::fprintf(stderr, "%s: error (rank %d of %d): %s\n", program, rank, size, what);
    else
      std::fprintf(stderr, "%s: error: %s\n", program, what);
    std::fflush(stderr);
  };

  int code = kExitOk;
  std::string failure;
  try {
    code = body(argc, argv);
  } catch (const ConfigError& e) {
    if (rank == 0) error_line(e.what());
    code = kExitUsage;
  } catch (const boost::program_options::error& e) {
    if (rank == 0) error_line(e.what());
    code = kExitUsage;
  } catch (const std::exception& e) {
    failure = *e.what() ? e.what() : "unknown error";
    code = kExitFailure;
  } catch (...) {
    failure = "unknown exception";
    code = kExitFailure;
  }
  if (!failure.empty()) {
    if (size == 1) {
      error_line(failure.c_str());
    } else if (all_ranks_failed(5.0)) {
      print_gathered(program, failure, rank, size);
    } else {
      error_line(failure.c_str());
      MPI_Abort(MPI_COMM_WORLD, code);  // the other ranks may be blocked in a collective
    }
  }
  if (has_unclosable_file()) {  // unclosable_files.h: MPI_Finalize or exit handlers would hang or crash on it
    std::fflush(stdout), std::fflush(stderr);
    _exit(code == kExitOk ? kExitFailure : code);
  }
  MPI_Comm_free(&g_error_comm);
  MPI_Finalize();
  return code;
}

}  // namespace ovr
