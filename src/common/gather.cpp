#include "common/gather.h"

#include "common/mpi_runtime.h"

namespace ovr {

std::vector<std::pair<uint64_t, uint64_t>> byte_pieces(uint64_t n, uint64_t max_piece) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t at = 0; at < n; at += max_piece) out.emplace_back(at, std::min(max_piece, n - at));
  return out;
}

std::string gather_to_root(MPI_Comm comm, const std::string& mine, uint64_t max_piece) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);
  const uint64_t n = mine.size();
  std::vector<uint64_t> sizes(size_t(ranks), 0);
  OVR_MPI_CHECK(MPI_Gather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, 0, comm));
  // Point to point, rank by rank and piece by piece: rank 0 holds the whole result anyway, and
  // this keeps every count under max_piece whatever the sizes.
  constexpr int kTag = 7301;
  if (rank != 0) {
    for (const auto& [at, len] : byte_pieces(n, max_piece))
      OVR_MPI_CHECK(MPI_Send(mine.data() + at, int(len), MPI_CHAR, 0, kTag, comm));
    return "";
  }
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;
  std::string all(total, '\0');
  uint64_t base = 0;
  for (int r = 0; r < ranks; ++r) {
    if (r == 0) {
      all.replace(0, n, mine);
    } else {
      for (const auto& [at, len] : byte_pieces(sizes[size_t(r)], max_piece))
        OVR_MPI_CHECK(MPI_Recv(all.data() + base + at, int(len), MPI_CHAR, r, kTag, comm, MPI_STATUS_IGNORE));
    }
    base += sizes[size_t(r)];
  }
  return all;
}

std::pair<uint64_t, uint64_t> offset_and_total(MPI_Comm comm, uint64_t n) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  uint64_t before = 0, total = 0;
  OVR_MPI_CHECK(MPI_Exscan(&n, &before, 1, MPI_UINT64_T, MPI_SUM, comm));
  if (rank == 0) before = 0;  // MPI_Exscan leaves rank 0's result undefined
  OVR_MPI_CHECK(MPI_Allreduce(&n, &total, 1, MPI_UINT64_T, MPI_SUM, comm));
  return {before, total};
}

}  // namespace ovr
