// Byte strings of any size between ranks (common/gather.h) and one file written by every rank at
// its 64-bit offset (io/concatenated_file.h), under mpiexec -n 1 and -n 3.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/gather.h"
#include "io/concatenated_file.h"
#include "io/fs.h"
#include "io/shared_model_source.h"
#include "test_util.h"

using namespace ovr;

namespace {
int my_rank() { int r; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int ranks() { int n; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

// Rank r's text: 17 r bytes (rank 0: none), each naming its rank, so order and size both show.
std::string text_of(int r) { return std::string(size_t(17 * r), char('a' + r)); }
std::string expected_concatenation() {
  std::string all;
  for (int r = 0; r < ranks(); ++r) all += text_of(r);
  return all;
}
}  // namespace

// The arithmetic that keeps every MPI count under 2^31 for any total: pieces cover [0, n) in order.
TEST(BytePieces, CoverSizesPastTwoGibInPiecesThatFitAnMpiCount) {
  const uint64_t gib = uint64_t(1) << 30;
  const auto p = byte_pieces(5 * gib + 3);
  ASSERT_EQ(p.size(), 6u);
  uint64_t next = 0;
  for (const auto& [at, len] : p) {
    EXPECT_EQ(at, next);
    EXPECT_LE(len, kMaxMpiPiece);
    EXPECT_LE(len, uint64_t(INT32_MAX));
    next = at + len;
  }
  EXPECT_EQ(next, 5 * gib + 3);
  EXPECT_EQ(p.back().second, 3u);
  EXPECT_TRUE(byte_pieces(0).empty());
  EXPECT_EQ(byte_pieces(2 * gib).size(), 2u);
  EXPECT_EQ(byte_pieces(10, 4), (std::vector<std::pair<uint64_t, uint64_t>>{{0, 4}, {4, 4}, {8, 2}}));
}

TEST(GatherToRoot, ConcatenatesInRankOrderAcrossManyPieces) {
  // 5-byte pieces: rank 2's 34 bytes travel as 7 messages.
  const std::string all = gather_to_root(MPI_COMM_WORLD, text_of(my_rank()), 5);
  if (my_rank() == 0) EXPECT_EQ(all, expected_concatenation());
  else EXPECT_EQ(all, "");
}

TEST(OffsetAndTotal, IsAnExclusivePrefixSum) {
  const auto [offset, total] = offset_and_total(MPI_COMM_WORLD, text_of(my_rank()).size());
  uint64_t before = 0;
  for (int r = 0; r < my_rank(); ++r) before += text_of(r).size();
  EXPECT_EQ(offset, before);
  EXPECT_EQ(total, expected_concatenation().size());
}

TEST(WriteConcatenated, EveryRankWritesItsPartAtItsOffset) {
  const std::string dir = test::shared_temp_dir("concatenated");
  const std::string path = dir + "/sub/results.jsonl";
  io::write_concatenated(path, MPI_COMM_WORLD, text_of(my_rank()));
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(io::read_text_file(path), expected_concatenation());
  EXPECT_FALSE(io::path_exists(path + ".tmp"));
  // Written again (a rerun): replaced whole, not appended to.
  io::write_concatenated(path, MPI_COMM_WORLD, my_rank() == 0 ? "x" : "");
  EXPECT_EQ(io::read_text_file(path), "x");
}

TEST(WriteConcatenated, AFailureEndsEveryRankAndLeavesNoFile) {
  const std::string dir = test::shared_temp_dir("concatenated_fail");
  if (my_rank() == 0) test::write_file(dir + "/not_a_dir", "a file where a directory is expected");
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string path = dir + "/not_a_dir/results.jsonl";
  EXPECT_THROW(io::write_concatenated(path, MPI_COMM_WORLD, text_of(my_rank())), Error);
  EXPECT_FALSE(io::path_exists(path));
}

// A model read once by all ranks together (io/shared_model_source.h): every rank gets every
// tensor exactly as one process reading the whole file does, having read only its slice.
TEST(SharedModelSource, EveryRankGetsWholeTensorsFromSlicesReadOnce) {
  const std::string dir = test::shared_temp_dir("shared_source");
  const std::string path = dir + "/model.safetensors";
  const std::vector<io::TensorInfo> infos = {{"big", io::DType::F32, {101, 7}}, {"odd", io::DType::BF16, {3}},
                                             {"scalar", io::DType::I64, {}}, {"empty", io::DType::F32, {0, 4}}};
  auto bytes_of = [](const io::TensorInfo& t) {
    std::string b(t.nbytes(), '\0');
    for (size_t i = 0; i < b.size(); ++i) b[i] = char((i * 131 + t.name.size()) % 251);
    return b;
  };
  if (my_rank() == 0) {
    auto sink = io::create_model_sink(path, io::StoreFormat::Safetensors, infos, io::SinkOptions{}, MPI_COMM_SELF);
    for (const auto& t : infos) sink->write_rows(t.name, 0, io::dataset_rows(t), bytes_of(t).data());
    sink->commit();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto src = io::open_model_source_shared(path, MPI_COMM_WORLD);
  const uint64_t before = io::shared_source_bytes_read();
  uint64_t total = 0;
  for (const auto& t : infos) {
    std::string got(t.nbytes(), '\0');
    src->read_rows(t.name, 0, io::dataset_rows(t), got.data());
    EXPECT_EQ(got, bytes_of(t)) << t.name;
    total += t.nbytes();
  }
  // A part of a tensor, as a chunked reader asks for it.
  std::string part(3 * 7 * 4, '\0');
  src->read_rows("big", 50, 3, part.data());
  EXPECT_EQ(part, bytes_of(infos[0]).substr(50 * 7 * 4, part.size()));
  total += part.size();
  uint64_t mine = io::shared_source_bytes_read() - before, sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (ranks() > 1) {
    EXPECT_EQ(sum, total) << "the ranks together read each byte once";
    EXPECT_LT(mine, total) << "one rank read everything";
  }
  // A tensor the file lacks: the same error on every rank, no hang.
  std::string none(4, '\0');
  EXPECT_THROW(src->read_rows("missing", 0, 1, none.data()), Error);
}

// The slicing arithmetic of a shared read for tensors past 2 GiB on many ranks: every MPI count
// and displacement of a round fits an int (<= 1 GiB), and the rounds tile the rows.
TEST(SharedModelSource, SliceRoundsKeepEveryCountAndDisplacementUnderAnInt) {
  const uint64_t row = 3584 * 4;                          // a 7B embedding row in F32
  const int64_t rows = int64_t((uint64_t(3) << 30) / row);  // a 3 GiB tensor
  for (int ranks : {1, 3, 128}) {
    const auto rounds = io::slice_rounds(rows, row, ranks, kMaxMpiPiece);
    int64_t next = 0;
    for (const auto& r : rounds) {
      EXPECT_EQ(r.first_row, next);
      int64_t bytes = 0;
      for (int k = 0; k < ranks; ++k) {
        EXPECT_GE(r.counts[size_t(k)], 0);
        EXPECT_GE(r.displs[size_t(k)], 0);
        EXPECT_LE(uint64_t(r.displs[size_t(k)]) + uint64_t(r.counts[size_t(k)]), kMaxMpiPiece);
        EXPECT_EQ(r.displs[size_t(k)], bytes) << "slices follow each other";
        bytes += r.counts[size_t(k)];
      }
      EXPECT_EQ(bytes, r.rows * int64_t(row));
      next += r.rows;
    }
    EXPECT_EQ(next, rows);
    EXPECT_GE(rounds.size(), 3u);
  }
}

// A corrupt byte in a checkpoint read in slices by several ranks: the CRC combined from the slices
// differs from the stored one, and every rank stops with the same error.
TEST(SharedModelSource, ACorruptTensorIsDetectedOnEveryRank) {
  const std::string dir = test::shared_temp_dir("shared_source_crc");
  const std::string path = dir + "/model.h5";
  const io::TensorInfo info{"w", io::DType::F32, {64, 16}};
  std::string bytes(info.nbytes(), '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 7919 + 13) % 253);
  if (my_rank() == 0) {
    auto sink = io::create_model_sink(path, io::StoreFormat::Hdf5, {info}, io::SinkOptions{}, MPI_COMM_SELF);
    sink->write_rows("w", 0, 64, bytes.data());
    sink->commit();
    std::string file = io::read_text_file(path);
    const size_t at = file.find(bytes.substr(2000, 32));
    ASSERT_NE(at, std::string::npos);
    file[at + 5] ^= 0x40;
    test::write_file(path, file);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto src = io::open_model_source_shared(path, MPI_COMM_WORLD);
  std::string got(info.nbytes(), '\0');
  try {
    src->read_rows("w", 0, 64, got.data());
    ADD_FAILURE() << "a corrupt tensor was read without an error";
  } catch (const Error& e) {
    // On one rank the reader itself reads the whole dataset and checks it; on several, the slices' CRCs.
    const std::string what = e.what();
    EXPECT_NE(what.find(ranks() > 1 ? "tensor 'w' is corrupt" : "the file is corrupt"), std::string::npos) << what;
  }
}
