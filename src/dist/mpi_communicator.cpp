#include <climits>
#include <vector>

#include "common/mpi_runtime.h"
#include "dist/communicator.h"

namespace ovr::dist {
namespace {

// MPI counts are int: larger buffers go in pieces of at most kMaxCount elements per rank.
constexpr int64_t kMaxCount = INT_MAX / 2;

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) {
    OVR_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override { MPI_Comm_free(&comm_); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  bool device_buffers() const override { return false; }
  MPI_Comm host_comm() const override { return comm_; }

  void reduce_scatter_sum(const float* send, float* recv, int64_t count) override {
    if (count <= kMaxCount) {
      OVR_MPI_CHECK(MPI_Reduce_scatter_block(send, recv, int(count), MPI_FLOAT, MPI_SUM, comm_));
      return;
    }
    // Piece p of every block: gather the pieces contiguously, then reduce-scatter them.
    std::vector<float> staged;
    for (int64_t off = 0; off < count; off += kMaxCount) {
      const int64_t n = std::min(kMaxCount, count - off);
      staged.resize(size_t(n) * size_t(size_));
      for (int r = 0; r < size_; ++r)
        std::copy_n(send + int64_t(r) * count + off, n, staged.data() + int64_t(r) * n);
      OVR_MPI_CHECK(MPI_Reduce_scatter_block(staged.data(), recv + off, int(n), MPI_FLOAT, MPI_SUM, comm_));
    }
  }

  void all_gather(const float* send, float* recv, int64_t count) override {
    if (count <= kMaxCount) {
      OVR_MPI_CHECK(MPI_Allgather(send, int(count), MPI_FLOAT, recv, int(count), MPI_FLOAT, comm_));
      return;
    }
    std::vector<float> staged;
    for (int64_t off = 0; off < count; off += kMaxCount) {
      const int64_t n = std::min(kMaxCount, count - off);
      staged.resize(size_t(n) * size_t(size_));
      OVR_MPI_CHECK(MPI_Allgather(send + off, int(n), MPI_FLOAT, staged.data(), int(n), MPI_FLOAT, comm_));
      for (int r = 0; r < size_; ++r)
        std::copy_n(staged.data() + int64_t(r) * n, n, recv + int64_t(r) * count + off);
    }
  }

  void all_reduce_sum(float* data, int64_t count) override {
    for (int64_t off = 0; off < count; off += kMaxCount) {
      const int64_t n = std::min(kMaxCount, count - off);
      OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, int(n), MPI_FLOAT, MPI_SUM, comm_));
    }
  }

  void synchronize() override {}  // MPI collectives above are blocking

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) { return std::make_unique<MpiCommunicator>(comm); }

}  // namespace ovr::dist
