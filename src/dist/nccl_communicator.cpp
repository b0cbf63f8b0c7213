// The NCCL backend: one NCCL communicator per MPI communicator, its unique id broadcast by MPI.
// Compiled only when CMake finds CUDA and NCCL (OVR_HAVE_NCCL); otherwise the factory says so.
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "dist/communicator.h"

#ifdef OVR_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
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

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, int device) {
    OVR_CUDA_CHECK(cudaSetDevice(device));
    OVR_MPI_CHECK(MPI_Comm_dup(comm, &host_));
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    ncclUniqueId id;
    if (rank_ == 0) OVR_NCCL(ncclGetUniqueId(&id));
    OVR_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm));
    OVR_NCCL(ncclCommInitRank(&comm_, size_, id, rank_));
  }
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    MPI_Comm_free(&host_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }
  bool device_buffers() const override { return true; }
  MPI_Comm host_comm() const override { return host_; }

  void reduce_scatter_sum(const float* send, float* recv, int64_t count) override {
    OVR_NCCL(ncclReduceScatter(send, recv, size_t(count), ncclFloat32, ncclSum, comm_, stream_));
  }
  void all_gather(const float* send, float* recv, int64_t count) override {
    OVR_NCCL(ncclAllGather(send, recv, size_t(count), ncclFloat32, comm_, stream_));
  }
  void all_reduce_sum(float* data, int64_t count) override {
    OVR_NCCL(ncclAllReduce(data, data, size_t(count), ncclFloat32, ncclSum, comm_, stream_));
  }
  void synchronize() override { OVR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  MPI_Comm host_ = MPI_COMM_NULL;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;  // the legacy default stream, LibTorch's default
  int rank_ = 0, size_ = 1;
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
