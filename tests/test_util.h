// Helpers shared by the tests: temporary directories, synthetic models, running executables.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace ovr::test {

// A fresh empty directory under the test temp dir (removed by the next call with the same tag).
std::string temp_dir(const std::string& tag);
// The same for an MPI test: made by rank 0, its path on every rank of MPI_COMM_WORLD. The tag gets
// the rank count, as ctest runs a test's 1-rank and n-rank variants at the same time. Collective.
std::string shared_temp_dir(const std::string& tag);

// Deterministic pseudo-random bytes for a tensor; floating tensors get finite values.
std::vector<char> random_bytes(const io::TensorInfo& t, uint32_t seed);

// A small Hugging Face model directory with the given tensors (random contents), config.json
// and, if max_shard_bytes is small enough, several shards with an index.
void write_hf_model(const std::string& dir, const std::vector<io::TensorInfo>& tensors, uint32_t seed,
                    uint64_t max_shard_bytes);
// Tensors shaped like a (very small) Qwen2.5-VL language model, in several dtypes.
std::vector<io::TensorInfo> small_model_tensors();

// Runs a command line through /bin/sh; returns the exit status, or 128 + signal if it was killed
// by a signal. Output goes to `output` (stdout and stderr together) when given.
int run_command(const std::string& cmd, std::string* output = nullptr);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace ovr::test
