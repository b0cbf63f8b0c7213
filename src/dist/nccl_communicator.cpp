// The NCCL backend: one NCCL communicator per MPI communicator, its unique id broadcast by MPI.
// Compiled only when CMake finds CUDA and NCCL (OVR_HAVE_NCCL); otherwise the factory says so.
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "dist/communicator.h"

#ifdef OVR_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#endif

namespace ovr::dist {

#ifdef OVR_HAVE_NCCL
namespace {

void nccl_check(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) throw Error(std::string("NCCL: ") + call + ": " + ncclGetErrorString(r));
}
void cuda_check(cudaError_t r, const char* call) {
  if (r != cudaSuccess) throw Error(std::string("CUDA: ") + call + ": " + cudaGetErrorString(r));
}
#define OVR_NCCL(call) nccl_check((call), #call)
#define OVR_CUDA_CHECK(call) cuda_check((call), #call)

// As robust as PyTorch's ProcessGroupNCCL: the NCCL communicator is non-blocking, so that no NCCL
// call can wait forever, and every wait polls ncclCommGetAsyncError against a deadline. A
// collective that fails, or has not completed OVR_NCCL_TIMEOUT_S seconds (default 600) after it
// was issued -- a peer that died or hangs -- aborts the communicator and throws one error line
// naming this rank and the collective, instead of hanging the job until Slurm's time limit.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, int device) {
    OVR_CUDA_CHECK(cudaSetDevice(device));
    OVR_MPI_CHECK(MPI_Comm_dup(comm, &host_));
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    if (const char* t = std::getenv("OVR_NCCL_TIMEOUT_S")) {
      char* end = nullptr;
      timeout_s_ = std::strtod(t, &end);
      if (end == t || *end != '\0' || !(timeout_s_ > 0)) throw Error(std::string("OVR_NCCL_TIMEOUT_S: expected seconds > 0, got '") + t + "'");
    }
    ncclUniqueId id;
    if (rank_ == 0) OVR_NCCL(ncclGetUniqueId(&id));
    OVR_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    begin("ncclCommInitRank", 0);
    enqueued(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config));
  }
  ~NcclCommunicator() override {
    if (comm_) {
      // A communicator with work in flight (an exception unwound past a collective) is aborted:
      // destroying it would wait for peers that may be gone.
      ncclResult_t state = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state == ncclSuccess && cudaStreamQuery(stream_) == cudaSuccess)
        ncclCommDestroy(comm_);
      else
        ncclCommAbort(comm_);
    }
    MPI_Comm_free(&host_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }
  bool device_buffers() const override { return true; }
  MPI_Comm host_comm() const override { return host_; }

  void reduce_scatter_sum(const float* send, float* recv, int64_t count) override {
    begin("ncclReduceScatter", count);
    enqueued(ncclReduceScatter(send, recv, size_t(count), ncclFloat32, ncclSum, comm_, stream_));
  }
  void all_gather(const float* send, float* recv, int64_t count) override {
    begin("ncclAllGather", count);
    enqueued(ncclAllGather(send, recv, size_t(count), ncclFloat32, comm_, stream_));
  }
  void all_reduce_sum(float* data, int64_t count) override {
    begin("ncclAllReduce", count);
    enqueued(ncclAllReduce(data, data, size_t(count), ncclFloat32, ncclSum, comm_, stream_));
  }
  // Polls the stream instead of blocking in cudaStreamSynchronize, which would wait forever for a
  // collective whose peer is gone.
  void synchronize() override {
    for (;;) {
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) fail(std::string("CUDA error: ") + cudaGetErrorString(q));
      check_async();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

 private:
  void begin(const char* op, int64_t count) {
    op_ = op;
    count_ = count;
    started_ = std::chrono::steady_clock::now();
  }
  // In non-blocking mode a call may return ncclInProgress; the next call may come only once the
  // communicator is no longer in progress.
  void enqueued(ncclResult_t r) {
    if (r != ncclSuccess && r != ncclInProgress) fail(ncclGetErrorString(r));
    for (ncclResult_t state = r; state == ncclInProgress;) {
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) fail("ncclCommGetAsyncError failed");
      if (state != ncclSuccess && state != ncclInProgress) fail(ncclGetErrorString(state));
      if (state == ncclInProgress) {
        check_deadline();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }
  void check_async() {
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) fail("ncclCommGetAsyncError failed");
    if (state != ncclSuccess && state != ncclInProgress) fail(ncclGetErrorString(state));
    check_deadline();
  }
  void check_deadline() {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (waited > timeout_s_)
      fail("not complete after " + std::to_string(int64_t(waited)) + " s (a peer died or is stuck; OVR_NCCL_TIMEOUT_S sets the limit)");
  }
  [[noreturn]] void fail(const std::string& why) {
    if (comm_) ncclCommAbort(comm_), comm_ = nullptr;
    throw Error("rank " + std::to_string(rank_) + ": NCCL " + op_ + (count_ > 0 ? " of " + std::to_string(count_) + " floats" : "") +
                ": " + why);
  }

  MPI_Comm host_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;  // the legacy default stream, LibTorch's default
  int rank_ = 0, size_ = 1;
  double timeout_s_ = 600;
  std::string op_;
  int64_t count_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device) {
  return std::make_unique<NcclCommunicator>(comm, device);
}
bool have_nccl() { return true; }
#else
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, int) {
  throw Error("this build of ovr has no NCCL backend (configure with CUDA and NCCL found, see INSTALL.md)");
}
bool have_nccl() { return false; }
#endif

}  // namespace ovr::dist
