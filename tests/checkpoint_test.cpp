// The HDF5 checkpoint on one rank: dtypes, attributes, checksums, atomic commit, `latest`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "common/error.h"
#include "io/fs.h"
#include "io/hdf5_checkpoint.h"
#include "test_util.h"

using namespace ovr;
using namespace ovr::io;

namespace {

void write_small_checkpoint(const std::string& path, int64_t step, bool update_latest, uint32_t seed = 1) {
  CheckpointAttrs a;
  a.step = step;
  a.role = "critic";
  a.model_config = "{\"hidden_size\": 16}";
  a.run_config = "{\"lr\": 0.001}";
  a.extra["note"] = "hello";
  CheckpointWriter w(path, MPI_COMM_SELF, a);
  for (const auto& t : test::small_model_tensors()) w.define("/model/" + t.name, t.dtype, t.shape);
  w.define("/optim/exp_avg", DType::F32, {100});
  const auto tensors = test::small_model_tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    auto bytes = test::random_bytes(t, seed * 100 + uint32_t(i));  // distinct bytes per tensor
    w.write_rows("/model/" + t.name, 0, dataset_rows(t), bytes.data());
  }
  std::vector<float> m(100);
  for (int i = 0; i < 100; ++i) m[size_t(i)] = float(i) * 0.5f + float(step);
  w.write_shard("/optim/exp_avg", 0, 100, m.data());
  w.commit(update_latest);
}

// Offset of `needle` in the file's bytes (the first occurrence).
size_t find_bytes(const std::string& hay, const std::vector<char>& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  return it == hay.end() ? std::string::npos : size_t(it - hay.begin());
}

}  // namespace

TEST(Checkpoint, EveryDtypeShapeAndAttributeReadsBackExactly) {
  const std::string dir = test::temp_dir("ckpt_roundtrip");
  write_small_checkpoint(dir + "/step_5.h5", 5, false);
  CheckpointReader r(dir + "/step_5.h5");
  EXPECT_EQ(r.attrs().step, 5);
  EXPECT_EQ(r.attrs().role, "critic");
  EXPECT_EQ(r.attrs().model_config, "{\"hidden_size\": 16}");
  EXPECT_EQ(r.attrs().run_config, "{\"lr\": 0.001}");
  EXPECT_EQ(r.attrs().extra.at("note"), "hello");
  EXPECT_NE(r.attrs().code_version.find("ovr"), std::string::npos);
  const auto listed = r.list("/model");
  const auto expected = test::small_model_tensors();
  ASSERT_EQ(listed.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(listed[i].name, expected[i].name) << "creation order is kept";
    EXPECT_EQ(listed[i].dtype, expected[i].dtype);
    EXPECT_EQ(listed[i].shape, expected[i].shape);
    std::vector<char> got(expected[i].nbytes() + 1);
    r.read("/model/" + expected[i].name, got.data());
    auto want = test::random_bytes(expected[i], 100 + uint32_t(i));
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size())) << expected[i].name;
  }
  std::vector<float> m(100);
  r.read("/optim/exp_avg", m.data());
  EXPECT_EQ(m[7], 3.5f + 5);
  EXPECT_FALSE(r.has("/optim/nothing"));
  EXPECT_FALSE(r.has("/nogroup/x"));
}

TEST(Checkpoint, ReadingInChunksChecksTheChecksumAtTheLastRow) {
  const std::string dir = test::temp_dir("ckpt_chunks");
  write_small_checkpoint(dir + "/c.h5", 1, false);
  CheckpointReader r(dir + "/c.h5");
  const TensorInfo t = r.info("/model/model.embed_tokens.weight");
  std::vector<char> all(t.nbytes());
  const uint64_t rb = row_bytes(t);
  for (int64_t b = 0; b < 64; b += 10) r.read_rows(t.name, b, std::min<int64_t>(10, 64 - b), all.data() + uint64_t(b) * rb);
  EXPECT_EQ(all, test::random_bytes(test::small_model_tensors()[0], 100));
}

TEST(Checkpoint, FlippedDataByteIsReportedWithFileAndDataset) {
  const std::string dir = test::temp_dir("ckpt_flip");
  const std::string path = dir + "/c.h5";
  write_small_checkpoint(path, 1, false);
  // Find lm_head's bytes in the file and flip one bit in the middle of them.
  const auto lm = test::small_model_tensors().back();
  auto want = test::random_bytes(lm, 100 + uint32_t(test::small_model_tensors().size() - 1));
  std::string bytes = test::read_file(path);
  const size_t at = find_bytes(bytes, want);
  ASSERT_NE(at, std::string::npos);
  bytes[at + want.size() / 2] ^= 0x10;
  test::write_file(path, bytes);
  CheckpointReader r(path);
  std::vector<char> got(lm.nbytes());
  try {
    r.read("/model/lm_head.weight", got.data());
    FAIL() << "corruption not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/model/lm_head.weight: checksum mismatch"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, IncompletelyWrittenDatasetIsNeverCommitted) {
  const std::string dir = test::temp_dir("ckpt_incomplete");
  const std::string path = dir + "/c.h5";
  {
    CheckpointWriter w(path, MPI_COMM_SELF, CheckpointAttrs{});
    w.define("/model/a", DType::F32, {10, 2});
    std::vector<float> half(10, 1.0f);
    w.write_rows("/model/a", 0, 5, half.data());
    try {
      w.commit(true);
      FAIL() << "commit accepted a half-written dataset";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("/model/a was not completely written (rows 5..10 missing)"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(path_exists(path));
  EXPECT_FALSE(path_exists(path + ".tmp")) << "the temporary file is removed";
  EXPECT_FALSE(path_exists(dir + "/latest"));
}

TEST(Checkpoint, RowsWrittenOutOfOrderAreRefused) {
  const std::string dir = test::temp_dir("ckpt_order");
  CheckpointWriter w(dir + "/c.h5", MPI_COMM_SELF, CheckpointAttrs{});
  w.define("/model/a", DType::F32, {10});
  std::vector<float> v(10, 1.0f);
  w.write_rows("/model/a", 0, 5, v.data());
  EXPECT_THROW(w.write_rows("/model/a", 6, 2, v.data()), Error);
  EXPECT_THROW(w.write_rows("/model/a", 5, 6, v.data()), Error);  // beyond the end
  EXPECT_THROW(w.define("/model/a", DType::F32, {1}), Error);      // twice
  EXPECT_THROW(w.define("model/b", DType::F32, {1}), Error);       // not absolute
}

TEST(Checkpoint, LatestPointsAtTheLastCommittedCheckpoint) {
  const std::string dir = test::temp_dir("ckpt_latest");
  EXPECT_THROW(resolve_latest(dir), Error);
  write_small_checkpoint(dir + "/step_1.h5", 1, true);
  write_small_checkpoint(dir + "/step_2.h5", 2, true);
  EXPECT_EQ(resolve_latest(dir), dir + "/step_2.h5");
  CheckpointReader r(dir);  // a directory opens through `latest`
  EXPECT_EQ(r.attrs().step, 2);
  write_small_checkpoint(dir + "/step_3.h5", 3, false);  // not pointed at
  EXPECT_EQ(CheckpointReader(dir).attrs().step, 2);
}

TEST(Checkpoint, UncommittedTruncatedAndForeignFilesAreRefusedClearly) {
  const std::string dir = test::temp_dir("ckpt_refuse");
  const std::string path = dir + "/c.h5";
  write_small_checkpoint(path, 1, false);
  const std::string bytes = test::read_file(path);
  for (size_t cut : {size_t(0), size_t(7), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    test::write_file(dir + "/cut.h5", bytes.substr(0, cut));
    try {
      CheckpointReader r(dir + "/cut.h5");
      for (const auto& t : r.list("/model")) {
        std::vector<char> buf(t.nbytes() + 1);
        r.read("/model/" + t.name, buf.data());
      }
      FAIL() << "truncation at " << cut << " not detected";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "/cut.h5"), std::string::npos) << e.what();
    }
  }
  test::write_file(dir + "/text.h5", "this is not HDF5");
  EXPECT_THROW(CheckpointReader(dir + "/text.h5"), Error);
  EXPECT_THROW(CheckpointReader(dir + "/missing.h5"), Error);
  test::write_file(dir + "/latest", "../escape.h5\n");
  EXPECT_THROW(resolve_latest(dir), Error);
}

TEST(Checkpoint, BfloatTensorsAreReadableAsFloatsByOtherHdf5Tools) {
  // h5dump prints the values of our custom 16-bit float types (the point of using them).
  const std::string dir = test::temp_dir("ckpt_h5dump");
  CheckpointWriter w(dir + "/c.h5", MPI_COMM_SELF, CheckpointAttrs{});
  w.define("/model/w", DType::BF16, {4});
  w.define("/model/h", DType::F16, {2});
  const uint16_t bf[4] = {f32_to_bf16(1.0f), f32_to_bf16(-2.5f), f32_to_bf16(3.140625f), f32_to_bf16(0.0078125f)};
  const uint16_t hf[2] = {f32_to_f16(0.5f), f32_to_f16(-65504.0f)};
  w.write_rows("/model/w", 0, 4, bf);
  w.write_rows("/model/h", 0, 2, hf);
  w.commit(false);
  std::string out;
  if (test::run_command("command -v h5dump", &out) != 0) GTEST_SKIP() << "h5dump not installed";
  ASSERT_EQ(test::run_command("h5dump -d /model/w -d /model/h " + dir + "/c.h5", &out), 0) << out;
  EXPECT_NE(out.find("1, -2.5, 3.14062, 0.0078125"), std::string::npos) << out;
  EXPECT_NE(out.find("0.5, -65504"), std::string::npos) << out;
}
