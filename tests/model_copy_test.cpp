// Conversion and averaging through the library (one rank): byte identity, arithmetic, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "io/fs.h"
#include "io/model_copy.h"
#include "io/safetensors.h"
#include "io/tensor_store.h"
#include "test_util.h"

using namespace ovr;
using namespace ovr::io;

namespace {

void convert(const std::string& in, const std::string& out, uint64_t chunk = 1 << 20, uint64_t shard = 5'000'000'000) {
  auto src = open_model_source(in);
  SinkOptions o;
  o.model_config = src->model_config();
  o.metadata = src->metadata();
  o.max_shard_size = shard;
  auto sink = create_model_sink(out, detect_output_format(out), src->tensors(), o, MPI_COMM_SELF);
  copy_tensors(*src, *sink, MPI_COMM_SELF, chunk);
}

// name -> (dtype, shape, bytes) of every tensor in a store.
std::map<std::string, std::pair<std::string, std::vector<char>>> contents(const std::string& path) {
  auto src = open_model_source(path);
  std::map<std::string, std::pair<std::string, std::vector<char>>> out;
  for (const auto& t : src->tensors()) {
    std::vector<char> b(t.nbytes());
    src->read_rows(t.name, 0, dataset_rows(t), b.data());
    out[t.name] = {std::string(dtype_name(t.dtype)) + shape_string(t.shape), b};
  }
  return out;
}

void average(const std::vector<std::string>& in, const std::vector<double>& w, const std::string& out, uint64_t chunk) {
  std::vector<std::unique_ptr<ModelSource>> owned;
  std::vector<ModelSource*> srcs;
  for (const auto& p : in) owned.push_back(open_model_source(p)), srcs.push_back(owned.back().get());
  check_same_tensors(srcs);
  SinkOptions o;
  o.model_config = srcs[0]->model_config();
  auto sink = create_model_sink(out, detect_output_format(out), srcs[0]->tensors(), o, MPI_COMM_SELF);
  average_tensors(srcs, w, *sink, MPI_COMM_SELF, chunk);
}

}  // namespace

TEST(Convert, HfToHdf5ToHfIsByteIdentical) {
  const std::string dir = test::temp_dir("convert_rt");
  test::write_hf_model(dir + "/hf", test::small_model_tensors(), 3, /*max_shard_bytes=*/3000);
  ASSERT_TRUE(path_exists(dir + "/hf/model.safetensors.index.json")) << "the source is sharded";
  convert(dir + "/hf", dir + "/model.h5", /*chunk=*/100);
  convert(dir + "/model.h5", dir + "/back", 1 << 20, /*shard=*/4000);
  convert(dir + "/model.h5", dir + "/single.safetensors");
  const auto a = contents(dir + "/hf");
  EXPECT_EQ(a.size(), test::small_model_tensors().size());
  EXPECT_EQ(a, contents(dir + "/model.h5"));
  EXPECT_EQ(a, contents(dir + "/back"));
  EXPECT_EQ(a, contents(dir + "/single.safetensors"));
  EXPECT_EQ(test::read_file(dir + "/back/config.json"), test::read_file(dir + "/hf/config.json"));
  EXPECT_EQ(open_model_source(dir + "/back")->metadata().at("format"), "pt");
  EXPECT_FALSE(path_exists(dir + "/back.tmp"));
}

TEST(Convert, ExistingOutputDirectoryNeedsOverwrite) {
  const std::string dir = test::temp_dir("convert_exists");
  test::write_hf_model(dir + "/hf", test::small_model_tensors(), 3, 1 << 30);
  make_dirs(dir + "/out");
  EXPECT_THROW(convert(dir + "/hf", dir + "/out"), Error);
}

TEST(Average, IsTheWeightedMeanInFp32StoredInTheInputDtype) {
  const std::string dir = test::temp_dir("average_mean");
  const auto tensors = test::small_model_tensors();
  for (int k = 0; k < 3; ++k) test::write_hf_model(dir + "/in" + std::to_string(k), tensors, 10, 1 << 30);
  // Rewrite inputs 1 and 2 so that floating tensors differ while integers stay equal.
  for (int k = 1; k < 3; ++k) {
    const std::string path = dir + "/in" + std::to_string(k) + "/model.safetensors";
    SafetensorsWriter w(path, tensors, {{"format", "pt"}});
    for (const auto& t : tensors) {
      auto bytes = test::random_bytes(t, 100u + uint32_t(k));
      if (!dtype_is_float(t.dtype)) {
        auto src = open_model_source(dir + "/in0");
        src->read_rows(t.name, 0, dataset_rows(t), bytes.data());
      }
      w.write(t.name, bytes.data());
    }
    w.close();
  }
  const std::vector<double> weights = {1.0, 2.0, 1.0};
  average({dir + "/in0", dir + "/in1", dir + "/in2"}, weights, dir + "/avg.h5", /*chunk=*/64);
  auto in0 = contents(dir + "/in0"), in1 = contents(dir + "/in1"), in2 = contents(dir + "/in2"), out = contents(dir + "/avg.h5");
  for (const auto& t : tensors) {
    const size_t n = size_t(t.numel());
    if (!dtype_is_float(t.dtype)) {
      EXPECT_EQ(out[t.name].second, in0[t.name].second) << t.name;
      continue;
    }
    std::vector<float> x0(n), x1(n), x2(n), y(n);
    if (t.dtype == DType::F64) continue;  // checked in fp64 below
    to_f32(t.dtype, in0[t.name].second.data(), x0.data(), n);
    to_f32(t.dtype, in1[t.name].second.data(), x1.data(), n);
    to_f32(t.dtype, in2[t.name].second.data(), x2.data(), n);
    to_f32(t.dtype, out[t.name].second.data(), y.data(), n);
    for (size_t e = 0; e < n; ++e) {
      float want = 0.25f * x0[e];
      want += 0.5f * x1[e];
      want += 0.25f * x2[e];
      std::vector<char> rounded(dtype_size(t.dtype));
      from_f32(t.dtype, &want, rounded.data(), 1);
      float want_stored;
      to_f32(t.dtype, rounded.data(), &want_stored, 1);
      ASSERT_EQ(y[e], want_stored) << t.name << "[" << e << "]";
    }
  }
  const auto& f64 = out["model.norm.weight"].second;
  const double* y64 = reinterpret_cast<const double*>(f64.data());
  const double* a64 = reinterpret_cast<const double*>(in0["model.norm.weight"].second.data());
  const double* b64 = reinterpret_cast<const double*>(in1["model.norm.weight"].second.data());
  const double* c64 = reinterpret_cast<const double*>(in2["model.norm.weight"].second.data());
  for (int e = 0; e < 16; ++e) EXPECT_NEAR(y64[e], 0.25 * a64[e] + 0.5 * b64[e] + 0.25 * c64[e], 1e-15);
}

TEST(Average, ChunkSizeDoesNotChangeTheResult) {
  const std::string dir = test::temp_dir("average_chunks");
  for (int k = 0; k < 2; ++k) test::write_hf_model(dir + "/in" + std::to_string(k), test::small_model_tensors(), 20, 1 << 30);
  average({dir + "/in0", dir + "/in1"}, {1, 1}, dir + "/small.safetensors", 8);
  average({dir + "/in0", dir + "/in1"}, {1, 1}, dir + "/large.safetensors", 1 << 30);
  EXPECT_EQ(test::read_file(dir + "/small.safetensors"), test::read_file(dir + "/large.safetensors"));
}

TEST(Average, MismatchedInputsNameTheFirstDifference) {
  const std::string dir = test::temp_dir("average_mismatch");
  auto tensors = test::small_model_tensors();
  test::write_hf_model(dir + "/a", tensors, 1, 1 << 30);
  auto reshaped = tensors;
  reshaped[1].shape = {8, 32};
  test::write_hf_model(dir + "/b", reshaped, 1, 1 << 30);
  auto retyped = tensors;
  retyped[2].dtype = DType::F32;
  test::write_hf_model(dir + "/c", retyped, 1, 1 << 30);
  auto fewer = tensors;
  fewer.pop_back();
  test::write_hf_model(dir + "/d", fewer, 1, 1 << 30);
  auto expect_error = [&](const std::string& other, const std::string& phrase) {
    try {
      average({dir + "/a", other}, {1, 1}, dir + "/out.h5", 1 << 20);
      FAIL() << "no error for " << other;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  expect_error(dir + "/b", "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [8, 32] vs [16, 16]");
  expect_error(dir + "/c", "tensor 'model.layers.0.self_attn.q_proj.bias' has dtype F32 vs BF16");
  expect_error(dir + "/d", "tensor 'lm_head.weight' is missing from " + dir + "/d");
  EXPECT_FALSE(path_exists(dir + "/out.h5"));
}

TEST(Average, AssignmentBalancesBytesAcrossRanks) {
  std::vector<TensorInfo> t = {{"a", DType::F32, {100}}, {"b", DType::F32, {60}}, {"c", DType::F32, {50}}, {"d", DType::F32, {10}}};
  EXPECT_EQ(assign_tensors(t, 2), (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(assign_tensors(t, 1), (std::vector<int>{0, 0, 0, 0}));
}
