#include "train/checkpointing.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/model_copy.h"
#include "io/torch_bridge.h"
#include "model/weights.h"

namespace ovr::train {

std::vector<NamedTensor> model_parameters(model::Qwen2_5_VL& m) {
  std::vector<NamedTensor> out;
  for (const auto& p : m.lm->named_parameters()) out.push_back({model::published_name(p.key()), p.value()});
  if (m.visual)
    for (const auto& p : m.visual->named_parameters()) out.push_back({"visual." + p.key(), p.value()});
  return out;
}

bool trained_by(const std::string& name, const std::string& modules) {
  bool on = false;
  for (size_t a = 0; a <= modules.size();) {
    const size_t b = std::min(modules.find(',', a), modules.size());
    const std::string m = modules.substr(a, b - a);
    if (m == "all") on = true;
    else if (m == "llm") on |= name.rfind("model.", 0) == 0 || name.rfind("lm_head.", 0) == 0;
    else if (m == "vision") on |= name.rfind("visual.", 0) == 0 && name.rfind("visual.merger.", 0) != 0;
    else if (m == "merger") on |= name.rfind("visual.merger.", 0) == 0;
    else throw ConfigError("--train: expected llm, vision, merger or all (comma-separated), got '" + m + "'");
    a = b + 1;
  }
  return on;
}

void write_training_checkpoint(const std::string& path, io::CheckpointAttrs attrs, const std::vector<NamedTensor>& params,
                               io::DType dtype, const dist::ZeroAdamW& opt,
                               const std::vector<std::pair<std::string, int64_t>>& state) {
  attrs.extra["optim_params"] = opt.layout_json();
  io::CheckpointWriter w(path, MPI_COMM_WORLD, attrs);
  std::vector<io::TensorInfo> infos;
  for (const NamedTensor& p : params) {
    infos.push_back({"/model/" + p.name, dtype, p.tensor.sizes().vec()});
    w.define(infos.back().name, dtype, infos.back().shape);
  }
  opt.define(w);
  for (const auto& [key, value] : state) w.define(key, io::DType::I64, {});
  const std::vector<int> owner = io::assign_tensors(infos, world_size());
  for (size_t i = 0; i < params.size(); ++i)
    if (owner[i] == world_rank())
      io::write_tensor(w, infos[i].name, params[i].tensor.detach().to(at::kCPU).to(io::to_scalar_type(dtype)));
  opt.save(w);
  if (world_rank() == 0)
    for (const auto& [key, value] : state) w.write_rows(key, 0, 1, &value);
  w.commit(/*update_latest=*/true);
}

int64_t read_state_scalar(io::CheckpointReader& r, const std::string& name) {
  int64_t v = 0;
  r.read(name, &v);
  return v;
}

std::string step_file_name(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step_%08lld.h5", (long long)step);
  return name;
}

void remove_old_step_files(const std::string& dir, int64_t keep, int64_t newest) {
  std::vector<std::string> steps;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.size() == 16 && f.rfind("step_", 0) == 0 && f.substr(13) == ".h5" && f <= step_file_name(newest)) steps.push_back(f);
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + size_t(keep) < steps.size(); ++i) std::filesystem::remove(io::join_path(dir, steps[i]));
}

}  // namespace ovr::train
