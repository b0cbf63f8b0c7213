#include "test_util.h"

#include <mpi.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "io/fs.h"
#include "io/hf_model_dir.h"
#include "io/safetensors.h"

namespace ovr::test {

std::string temp_dir(const std::string& tag) {
  std::string dir = ::testing::TempDir() + "ovr_test_" + tag;
  run_command("rm -rf '" + dir + "'");
  io::make_dirs(dir);
  return dir;
}

std::string shared_temp_dir(const std::string& tag) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::string dir = rank == 0 ? temp_dir(tag + "_np" + std::to_string(ranks)) : "";
  int n = int(dir.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(size_t(n));
  MPI_Bcast(dir.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return dir;
}

std::vector<char> random_bytes(const io::TensorInfo& t, uint32_t seed) {
  std::vector<char> out(t.nbytes());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = size_t(t.numel());
  if (io::dtype_is_float(t.dtype)) {
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    if (t.dtype == io::DType::F64) {
      for (size_t i = 0; i < n; ++i) reinterpret_cast<double*>(out.data())[i] = double(v[i]) + 1e-12 * double(rng() % 7);
    } else {
      io::from_f32(t.dtype, v.data(), out.data(), n);
    }
  } else if (t.dtype == io::DType::BOOL) {
    for (auto& c : out) c = char(rng() & 1);
  } else {
    for (auto& c : out) c = char(rng());
  }
  return out;
}

void write_hf_model(const std::string& dir, const std::vector<io::TensorInfo>& tensors, uint32_t seed,
                    uint64_t max_shard_bytes) {
  io::make_dirs(dir);
  const auto shard_of = io::plan_shards(tensors, max_shard_bytes);
  const int n = shard_of.empty() ? 1 : shard_of.back() + 1;
  io::SafetensorsIndex index;
  for (int s = 0; s < n; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n);
    const std::string file = n == 1 ? "model.safetensors" : name;
    std::vector<io::TensorInfo> mine;
    for (size_t i = 0; i < tensors.size(); ++i)
      if (shard_of[i] == s) mine.push_back(tensors[i]);
    io::SafetensorsWriter w(io::join_path(dir, file), mine, {{"format", "pt"}});
    for (size_t i = 0; i < mine.size(); ++i) {
      auto bytes = random_bytes(mine[i], seed * 7919u + uint32_t(i) + uint32_t(s) * 131u);
      w.write(mine[i].name, bytes.data());
      index.weight_map[mine[i].name] = file;
      index.total_size += mine[i].nbytes();
    }
    w.close();
  }
  if (n > 1) io::write_safetensors_index(io::join_path(dir, "model.safetensors.index.json"), index);
  write_file(io::join_path(dir, "config.json"),
             "{\n  \"architectures\": [\"Qwen2_5_VLForConditionalGeneration\"],\n  \"hidden_size\": 16,\n"
             "  \"model_type\": \"qwen2_5_vl\",\n  \"torch_dtype\": \"bfloat16\"\n}\n");
}

std::vector<io::TensorInfo> small_model_tensors() {
  using io::DType;
  return {
      {"model.embed_tokens.weight", DType::BF16, {64, 16}},
      {"model.layers.0.self_attn.q_proj.weight", DType::BF16, {16, 16}},
      {"model.layers.0.self_attn.q_proj.bias", DType::BF16, {16}},
      {"model.layers.0.mlp.down_proj.weight", DType::F32, {16, 40}},
      {"model.layers.0.input_layernorm.weight", DType::F16, {16}},
      {"model.norm.weight", DType::F64, {16}},
      {"visual.patch_embed.proj.weight", DType::BF16, {8, 3, 2, 14, 14}},
      {"rope.scalar", DType::F32, {}},
      {"empty.buffer", DType::F32, {0, 4}},
      {"position_ids", DType::I64, {1, 12}},
      {"mask", DType::BOOL, {5}},
      {"lm_head.weight", DType::BF16, {64, 16}},
  };
}

int run_command(const std::string& cmd, std::string* output) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  if (output) *output = out;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  // sh reports a child killed by a signal as 128 + signal too.
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const std::string& path) { return io::read_text_file(path); }

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace ovr::test
