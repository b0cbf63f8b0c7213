#include "io/shared_model_source.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "common/gather.h"
#include "common/mpi_runtime.h"
#include "common/root_then_share.h"

namespace ovr::io {

namespace {

uint64_t g_bytes_read = 0;

class SharedSource : public ModelSource {
 public:
  SharedSource(std::unique_ptr<ModelSource> inner, MPI_Comm comm) : inner_(std::move(inner)), comm_(comm) {
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &ranks_);
    for (const auto& t : inner_->tensors()) infos_[t.name] = t;
  }
  const std::string& origin() const override { return inner_->origin(); }
  const std::vector<TensorInfo>& tensors() const override { return inner_->tensors(); }
  std::string model_config() const override { return inner_->model_config(); }
  std::map<std::string, std::string> metadata() const override { return inner_->metadata(); }

  // Rows [b, b + n) in rounds: in each, rank r reads its share of the round's rows and an
  // all-gather assembles them in dst. A round's share stays under kMaxMpiPiece bytes, so the int
  // counts of MPI_Allgatherv hold for tensors of any size.
  void read_rows(const std::string& name, int64_t b, int64_t n, void* dst) override {
    const auto it = infos_.find(name);
    if (it == infos_.end()) throw Error(origin() + ": no tensor '" + name + "'");
    const uint64_t rb = std::max<uint64_t>(row_bytes(it->second), 1);
    const int64_t per_round = std::max<int64_t>(1, int64_t(kMaxMpiPiece / rb)) * ranks_;
    char* out = static_cast<char*>(dst);
    for (int64_t at = 0; at < n || (at == 0 && n == 0); at += per_round) {
      const int64_t rows = std::min(per_round, n - at);
      std::vector<int> counts(static_cast<size_t>(ranks_)), displs(static_cast<size_t>(ranks_));
      for (int r = 0; r < ranks_; ++r) {
        const int64_t lo = rows * r / ranks_, hi = rows * (r + 1) / ranks_;
        counts[size_t(r)] = int((hi - lo) * int64_t(rb));
        displs[size_t(r)] = int(lo * int64_t(rb));
      }
      const int64_t lo = rows * rank_ / ranks_, hi = rows * (rank_ + 1) / ranks_;
      char* mine = out + uint64_t(at) * rb + uint64_t(lo) * rb;
      std::string error;
      try {
        if (hi > lo) inner_->read_rows(name, b + at + lo, hi - lo, mine);
        g_bytes_read += uint64_t(hi - lo) * rb;
      } catch (const std::exception& e) {
        error = e.what();
      }
      const std::string failed = first_error(comm_, error);
      if (!failed.empty()) throw Error(failed);
      OVR_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out + uint64_t(at) * rb, counts.data(), displs.data(),
                                   MPI_BYTE, comm_));
      if (n == 0) break;
    }
  }

 private:
  std::unique_ptr<ModelSource> inner_;
  MPI_Comm comm_;
  int rank_ = 0, ranks_ = 1;
  std::map<std::string, TensorInfo> infos_;
};

}  // namespace

std::unique_ptr<ModelSource> open_model_source_shared(const std::string& path, MPI_Comm comm) {
  // Every rank opens the file (headers only): an error there is the same on every rank.
  return std::make_unique<SharedSource>(open_model_source(path), comm);
}

uint64_t shared_source_bytes_read() { return g_bytes_read; }

}  // namespace ovr::io
