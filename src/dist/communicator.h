// The collectives data-parallel training needs, behind one interface with two backends:
//   MPI  (host buffers; CPU training and the tests),
//   NCCL (CUDA device buffers; bootstrapped through MPI; built when CUDA and NCCL are found).
// Only the bulk fp32 traffic of the ZeRO optimizer goes through here. Small scalars (loss sums,
// token counts, the stop flag) always use MPI on the host, whatever the backend.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

namespace ovr::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "mpi" or "nccl"
  virtual bool device_buffers() const = 0;  // true: buffers are CUDA device pointers
  // MPI over the same ranks, for small host-side values (norms, counts, flags).
  virtual MPI_Comm host_comm() const = 0;

  // send holds size() blocks of `count` floats; block r is summed over ranks into rank r's recv.
  virtual void reduce_scatter_sum(const float* send, float* recv, int64_t count) = 0;
  // Every rank contributes `count` floats; recv receives size() blocks, rank order.
  virtual void all_gather(const float* send, float* recv, int64_t count) = 0;
  // In place.
  virtual void all_reduce_sum(float* data, int64_t count) = 0;
  // Waits until the collectives issued so far are complete (NCCL runs them asynchronously).
  virtual void synchronize() = 0;
};

// Collectives over a duplicate of `comm` (so that they never match another library's messages).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);
// NCCL over the ranks of `comm`, on CUDA device `device` (made current) and the default stream (which orders
// them after the LibTorch kernels that produced the buffers). ovr::Error when this build has no
// NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device);
bool have_nccl();

}  // namespace ovr::dist
