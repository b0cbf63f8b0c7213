// MPI test program for the sharded optimizer-state layout:
//   write PATH    every rank writes its ZeRO shard of three flat fp32 datasets (+ model tensors)
//   read PATH     on any number of ranks, each rank reads its own range and checks every value
//   corrupt PATH  a copy with one flipped byte in /optim/exp_avg: every rank must get the error
//   fail-one X    rank 1 throws while rank 0 waits in a barrier: the job must end, not hang
// The flat length is odd, so shards are uneven (we pad ranges instead of requiring divisibility).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/hdf5_checkpoint.h"

using namespace ovr;

namespace {

constexpr int64_t kFlat = 1'000'003;
const char* kNames[] = {"/optim/master", "/optim/exp_avg", "/optim/exp_avg_sq"};

float value(int which, int64_t i) { return float(which) + std::sin(float(i) * 1e-3f); }

// Rank r's contiguous range of n elements over `size` ranks (the last ranks may get fewer).
void range_of(int64_t n, int rank, int size, int64_t* begin, int64_t* count) {
  const int64_t per = (n + size - 1) / size;
  *begin = std::min<int64_t>(n, per * rank);
  *count = std::min<int64_t>(n, *begin + per) - *begin;
}

int write(const std::string& path) {
  const int rank = world_rank(), size = world_size();
  io::CheckpointAttrs a;
  a.step = 42;
  io::CheckpointWriter w(path, MPI_COMM_WORLD, a);
  for (const char* n : kNames) w.define(n, io::DType::F32, {kFlat});
  w.define("/model/embed", io::DType::BF16, {size * 3, 4});
  w.define("/state/data_cursor", io::DType::I64, {3});
  int64_t b, c;
  range_of(kFlat, rank, size, &b, &c);
  std::vector<float> shard(static_cast<size_t>(c));
  for (int k = 0; k < 3; ++k) {
    for (int64_t i = 0; i < c; ++i) shard[size_t(i)] = value(k, b + i);
    w.write_shard(kNames[k], b, c, shard.data());
  }
  // Rows of one tensor from several ranks' write_rows: each rank writes its own block of rows.
  std::vector<uint16_t> rows(12, uint16_t(0x3f80 + rank));
  w.write_rows("/model/embed", rank * 3, 3, rows.data());
  if (rank == 0) {
    const int64_t cursor[3] = {2, 1234, 7};
    w.write_rows("/state/data_cursor", 0, 3, cursor);
  }
  w.commit(true);
  if (rank == 0) std::printf("wrote %s on %d ranks\n", path.c_str(), size);
  return 0;
}

int read(const std::string& path) {
  const int rank = world_rank(), size = world_size();
  io::CheckpointReader r(path, MPI_COMM_WORLD);
  int64_t bad = 0;
  int64_t b, c;
  range_of(kFlat, rank, size, &b, &c);
  std::vector<float> shard(static_cast<size_t>(c));
  for (int k = 0; k < 3; ++k) {
    r.read_shard(kNames[k], b, c, shard.data());
    for (int64_t i = 0; i < c; ++i) bad += shard[size_t(i)] != value(k, b + i);
  }
  int64_t cursor[3];
  r.read("/state/data_cursor", cursor);
  bad += cursor[0] != 2 || cursor[1] != 1234 || cursor[2] != 7;
  bad += r.attrs().step != 42;
  int64_t total = 0;
  OVR_MPI_CHECK(MPI_Allreduce(&bad, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
  if (rank == 0) std::printf("read on %d ranks: %s (%lld mismatches)\n", size, total ? "FAILED" : "OK", (long long)total);
  return total == 0 ? 0 : 1;
}

int corrupt(const std::string& path) {
  const int rank = world_rank();
  const std::string bad = path + ".corrupt.h5";
  if (rank == 0) {
    std::string bytes = io::read_text_file(path);
    std::vector<float> needle(4);
    for (int i = 0; i < 4; ++i) needle[size_t(i)] = value(1, 600000 + i);
    const char* n = reinterpret_cast<const char*>(needle.data());
    const size_t at = bytes.find(std::string(n, 16));
    if (at == std::string::npos) throw Error("test setup: exp_avg values not found in the file");
    bytes[at + 5] ^= 0x01;
    FILE* f = std::fopen(bad.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  OVR_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  io::CheckpointReader r(bad, MPI_COMM_WORLD);
  int64_t b, c;
  range_of(kFlat, rank, world_size(), &b, &c);
  std::vector<float> shard(static_cast<size_t>(c));
  r.read_shard("/optim/master", b, c, shard.data());  // intact
  int detected = 0;
  try {
    r.read_shard("/optim/exp_avg", b, c, shard.data());
  } catch (const Error& e) {
    detected = std::strstr(e.what(), "/optim/exp_avg: checksum mismatch") != nullptr;
    if (rank == 0) std::printf("detected: %s\n", e.what());
  }
  int all = 0;
  OVR_MPI_CHECK(MPI_Allreduce(&detected, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  return all ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("checkpoint_shards_mpi", argc, argv, [](int argc, char** argv) {
    if (argc != 3) throw Error("usage: checkpoint_shards_mpi write|read|corrupt PATH");
    const std::string mode = argv[1], path = argv[2];
    if (mode == "write") return write(path);
    if (mode == "read") return read(path);
    if (mode == "corrupt") return corrupt(path);
    if (mode == "fail-one") {  // rank 1 fails while the others wait in a collective: must not hang
      if (world_rank() == 1) throw Error(path + ": simulated failure on one rank");
      OVR_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
      return 0;
    }
    throw Error("unknown mode " + mode);
  });
}
