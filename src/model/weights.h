// Loading a module's parameters by Hugging Face name from any tensor store (HF directory,
// safetensors, our HDF5), and the name forms Hugging Face has used over time.
#pragma once
#include <mpi.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "model/qwen2.h"

namespace ovr::model {

// Published checkpoints name tensors "model.layers.*", "model.embed_tokens.*", "visual.*",
// "lm_head.*"; newer transformers write "model.language_model.*" and "model.visual.*". We read
// both and always write the published form.
std::string published_name(const std::string& name);

// Copies every parameter of `module` from `src` (converted to the parameter's dtype). Every
// parameter must be present with the right shape; a stored tensor that matches no parameter is
// an error unless its published name starts with one of `ignore_prefixes` (e.g. "visual." for
// the language model alone). Errors name the store, the tensor and the shapes.
// With a `prefix` ("visual."), the module's parameter p is the stored tensor prefix + p, and
// only stored tensors under the prefix are considered.
void load_parameters(torch::nn::Module& module, io::ModelSource& src, const std::vector<std::string>& ignore_prefixes,
                     const std::string& prefix = "");

// Writes every parameter of `module` under its (published) name, in its dtype, to a store at
// `path` (format from the extension: .h5 HDF5 checkpoint, .safetensors, else a HF directory),
// with `config_json` as the model config. Single rank; the ZeRO trainer writes its own shards.
void save_parameters(torch::nn::Module& module, const std::string& path, const std::string& config_json,
                     const io::CheckpointAttrs& attrs = {});

// The config.json text of a model: the store's own, or for a bare .safetensors file the
// config.json beside it; `origin` (optional) receives where it came from. Throws when there is none.
std::string model_config_text(const std::string& path, io::ModelSource& src, std::string* origin = nullptr);

// The language model of a checkpoint (a Hugging Face directory, a .safetensors file with a
// config.json beside it, or an ovr HDF5 checkpoint file or directory), in eval mode. The vision
// tower's tensors, if any, are left to the vision model, and a critic's value_head to the critic.
// With a communicator of several ranks, collective: the ranks read the weights together, each a
// slice, and share them (io/shared_model_source.h), so the file is read once, not once per rank.
Qwen2ForCausalLM load_qwen2_lm(const std::string& path, MPI_Comm comm = MPI_COMM_SELF);

}  // namespace ovr::model
