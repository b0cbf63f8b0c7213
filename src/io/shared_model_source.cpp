#include "io/shared_model_source.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/error.h"
#include "common/gather.h"
#include "common/mpi_runtime.h"
#include "common/root_then_share.h"
#include "io/checksum.h"

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

  // Rows [b, b + n) in rounds (slice_rounds): in each, rank r reads its share of the round's rows
  // and an all-gather assembles them in dst. The CRC of each rank's slice travels with it, so
  // that a whole-tensor read is checked on every rank at the cost of its own slice.
  void read_rows(const std::string& name, int64_t b, int64_t n, void* dst) override {
    const auto it = infos_.find(name);
    if (it == infos_.end()) throw Error(origin() + ": no tensor '" + name + "'");
    const uint64_t rb = std::max<uint64_t>(row_bytes(it->second), 1);
    char* out = static_cast<char*>(dst);
    uint32_t whole = 0;
    for (const SliceRound& round : slice_rounds(n, rb, ranks_, kMaxMpiPiece)) {
      char* base = out + uint64_t(round.first_row) * rb;
      char* mine = base + round.displs[size_t(rank_)];
      const int64_t my_rows = round.counts[size_t(rank_)] / int64_t(rb);
      uint32_t crc = 0;
      std::string error;
      try {
        if (my_rows > 0) inner_->read_rows(name, b + round.first_row + round.displs[size_t(rank_)] / int64_t(rb), my_rows, mine);
        g_bytes_read += uint64_t(my_rows) * rb;
        crc = crc32_update(0, mine, size_t(my_rows) * rb);
      } catch (const std::exception& e) {
        error = e.what();
      }
      const std::string failed = first_error(comm_, error);
      if (!failed.empty()) throw Error(failed);
      OVR_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, base, round.counts.data(), round.displs.data(), MPI_BYTE, comm_));
      std::vector<uint32_t> crcs(static_cast<size_t>(ranks_));
      OVR_MPI_CHECK(MPI_Allgather(&crc, 1, MPI_UINT32_T, crcs.data(), 1, MPI_UINT32_T, comm_));
      for (int r = 0; r < ranks_; ++r) whole = crc32_concat(whole, crcs[size_t(r)], uint64_t(round.counts[size_t(r)]));
    }
    uint32_t stored = 0;
    if (b == 0 && n == dataset_rows(it->second) && inner_->stored_crc(name, &stored) && stored != whole) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " (stored crc32 %08x, read %08x)", stored, whole);
      throw Error(origin() + ": tensor '" + name + "' is corrupt: its bytes do not match the checksum written with it" + buf);
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

std::vector<SliceRound> slice_rounds(int64_t rows, uint64_t row_bytes, int ranks, uint64_t max_round_bytes) {
  const uint64_t rb = std::max<uint64_t>(row_bytes, 1);
  const int64_t per_round = std::max<int64_t>(1, int64_t(max_round_bytes / rb));
  std::vector<SliceRound> out;
  for (int64_t at = 0; at < rows || (at == 0 && rows == 0); at += per_round) {
    SliceRound r;
    r.first_row = at;
    r.rows = std::min(per_round, rows - at);
    for (int k = 0; k < ranks; ++k) {
      const int64_t lo = r.rows * k / ranks, hi = r.rows * (k + 1) / ranks;
      r.counts.push_back(int((hi - lo) * int64_t(rb)));
      r.displs.push_back(int(lo * int64_t(rb)));
    }
    out.push_back(std::move(r));
    if (rows == 0) break;
  }
  return out;
}

}  // namespace ovr::io
