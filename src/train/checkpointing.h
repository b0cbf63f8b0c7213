// Writing a trainer's checkpoint: every model tensor under its Hugging Face name (each written
// by one rank), the ZeRO optimizer state (each rank its slices) and small int64 state scalars,
// committed atomically and pointed at by `latest`. Shared by ovr_sft and ovr_ppo.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "dist/zero_optimizer.h"
#include "io/hdf5_checkpoint.h"
#include "model/qwen2_5_vl.h"

namespace ovr::train {

struct NamedTensor {
  std::string name;  // published (Hugging Face) name
  at::Tensor tensor;
};

// The language model's and the vision tower's parameters, in a fixed order (the ZeRO
// optimizer's canonical order follows it).
std::vector<NamedTensor> model_parameters(model::Qwen2_5_VL& m);

// Whether `--train MODULES` (comma-separated llm, vision, merger, all) selects the parameter
// with this published name; ConfigError for an unknown module.
bool trained_by(const std::string& name, const std::string& modules);

// Collective over MPI_COMM_WORLD. attrs.extra gets the optimizer layout ("optim_params").
void write_training_checkpoint(const std::string& path, io::CheckpointAttrs attrs, const std::vector<NamedTensor>& params,
                               io::DType dtype, const dist::ZeroAdamW& opt,
                               const std::vector<std::pair<std::string, int64_t>>& state);

int64_t read_state_scalar(io::CheckpointReader& r, const std::string& name);

// "step_00000012.h5" for step 12.
std::string step_file_name(int64_t step);
// Removes the oldest step_*.h5 of a directory beyond the newest `keep` up to step `newest`, the
// checkpoint just committed (and made durable on every rank); a file of a later step, left by an
// earlier run that died before `latest` moved on, never pushes the newest one out. Rank 0 calls it.
void remove_old_step_files(const std::string& dir, int64_t keep, int64_t newest);

}  // namespace ovr::train
