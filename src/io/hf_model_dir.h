// Hugging Face model directories: config.json plus model.safetensors, or shards
// model-0000i-of-0000n.safetensors listed in model.safetensors.index.json.
#pragma once
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "io/tensor_store.h"

namespace ovr::io {

std::unique_ptr<ModelSource> open_hf_model_dir(const std::string& dir);
std::unique_ptr<ModelSink> create_hf_model_dir(const std::string& dir, const std::vector<TensorInfo>& tensors,
                                               const SinkOptions& options, MPI_Comm comm);

// Splits tensors, in order, into shards of at most max_bytes of tensor data (a tensor larger
// than that gets a shard of its own). Returns each tensor's shard index.
std::vector<int> plan_shards(const std::vector<TensorInfo>& tensors, uint64_t max_bytes);

}  // namespace ovr::io
