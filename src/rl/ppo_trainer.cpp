#include "rl/ppo_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "io/fs.h"
#include "io/run_lock.h"
#include "io/shared_model_source.h"
#include "io/tensor_store.h"
#include "io/torch_bridge.h"
#include "model/qwen2_5_vl_params.h"
#include "model/weights.h"
#include "rl/ppo_steps.h"
#include "train/checkpointing.h"

namespace ovr::rl {

namespace {

// A network being trained: its weights in checkpoint order, and its ZeRO optimizer.
struct Trainee {
  model::Qwen2_5_VL m;
  std::vector<train::NamedTensor> params;
  std::unique_ptr<dist::ZeroAdamW> opt;
  std::string model_config;
};

// The critic's head at the first iteration: PyTorch's default Linear initialisation, kaiming-uniform
// with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the paper's "U(-sqrt5, sqrt5)"), no bias;
// seeded, so every rank agrees. Later iterations read it from the critic checkpoint.
at::Tensor value_head(const PpoOptions& o, int64_t hidden) {
  if (o.critic.empty()) {
    torch::manual_seed(o.seed);
    return torch::nn::Linear(torch::nn::LinearOptions(hidden, 1).bias(false))->weight.detach().clone();
  }
  auto src = io::open_model_source(o.critic);
  bool found = false;
  for (const auto& t : src->tensors()) found |= t.name == "value_head.weight";
  if (!found) throw Error(o.critic + ": no value_head.weight (not a critic checkpoint)");
  return io::read_tensor(*src, "value_head.weight").to(at::kFloat);
}

// The networks of one iteration must be one architecture: the rollouts' generator, the policy,
// the critic (the policy's backbone + a value head) and the reference. Each one's parameter list
// follows from its config.json, so they are compared before any weight is read, naming the file
// and the first tensor that differs -- not a shape error deep inside a forward pass.
void check_same_architecture(const PpoOptions& o, const Rollouts& ro) {
  auto specs = [](const std::string& config_text, const std::string& origin) {
    std::map<std::string, std::vector<int64_t>> shapes;
    const auto config = nlohmann::json::parse(config_text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded()) throw Error(origin + ": its model config is not valid JSON");
    for (const auto& p : model::qwen2_5_vl_parameters(config, io::DType::F32, origin)) shapes[p.info.name] = p.info.shape;
    return shapes;
  };
  auto config_of = [](const std::string& path) { return model::model_config_text(path, *io::open_model_source(path)); };
  const std::string policy_origin = "--policy " + o.policy;
  const auto policy = specs(config_of(o.policy), policy_origin);
  auto compare = [&](const std::string& origin, const std::string& config_text) {
    const auto other = specs(config_text, origin);
    for (const auto& [name, shape] : policy) {
      const auto it = other.find(name);
      if (it == other.end()) throw Error(origin + ": has no " + name + " of " + policy_origin + " (another model)");
      if (it->second != shape)
        throw Error(origin + ": " + name + " is " + io::shape_string(it->second) + " there but " + io::shape_string(shape) +
                    " in " + policy_origin + " (another model)");
    }
    for (const auto& [name, shape] : other)
      if (!policy.count(name)) throw Error(origin + ": has " + name + ", which " + policy_origin + " lacks (another model)");
  };
  // A rollout file made from a bare .safetensors policy records no config: nothing to compare.
  if (!ro.model_config.empty() && ro.model_config != "{}")
    compare(o.rollouts + " (the policy that generated these rollouts)", ro.model_config);
  if (o.with_critic() && !o.critic.empty()) compare("--critic " + o.critic, config_of(o.critic));
  if (o.kl_coef > 0) compare("--reference " + o.reference, config_of(o.reference));
}

// Optimizer state continues only from our own PPO checkpoints (an SFT run's moments are not this
// objective's). Collective. Returns the checkpoint's step, 0 when it did not come from ovr_ppo.
int64_t continue_optimizer(const std::string& path, dist::ZeroAdamW& opt) {
  if (!io::is_ovr_checkpoint(path)) return 0;
  io::CheckpointReader r(path, MPI_COMM_WORLD);
  if (!r.attrs().extra.count("ppo")) return 0;
  opt.load(r, train::read_state_scalar(r, "/state/optimizer_steps"));
  return r.attrs().step;
}

// ZeRO AdamW over the parameters `trains` selects (the rest frozen).
template <class Select>
void make_optimizer(Trainee& t, const PpoOptions& o, dist::Communicator& comm, Select trains) {
  std::vector<dist::ZeroParam> on;
  for (auto& p : t.params) {
    const bool trained = trains(p.name);
    p.tensor.requires_grad_(trained);
    if (trained) on.push_back({p.name, p.tensor, p.tensor.dim() >= 2});
  }
  if (on.empty()) throw ConfigError("--train selects no parameter of the policy");
  t.opt = std::make_unique<dist::ZeroAdamW>(on, comm, o.zero_stage, o.adam, o.bucket_elems);
}

// step_{k+1}.h5 with the optimizer state. Collective.
void save(Trainee& t, const PpoOptions& o, const Rollouts& ro, const std::string& dir, const char* role) {
  const int64_t next = ro.iteration + 1;
  io::CheckpointAttrs attrs;
  attrs.step = next;
  attrs.role = role;
  attrs.model_config = t.model_config;
  attrs.run_config = o.run_config;
  attrs.extra["ppo"] = nlohmann::json({{"iteration", ro.iteration}, {"rollouts", o.rollouts}}).dump();
  io::make_dirs(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string path = io::join_path(dir, train::step_file_name(next));
  train::write_training_checkpoint(path, attrs, t.params, o.save_dtype, *t.opt,
                                   {{"/state/step", next}, {"/state/optimizer_steps", t.opt->steps_taken()}});
  log::info("checkpoint %s", path.c_str());
}

}  // namespace

int run_ppo(const Config& cfg) {
  const double t_start = monotonic_seconds();
  const PpoOptions o = ppo_options(cfg);
  const io::RunLock policy_lock(o.policy_output, MPI_COMM_WORLD);  // one run per output directory
  std::optional<io::RunLock> critic_lock;
  if (o.with_critic() && o.critic_output != o.policy_output) critic_lock.emplace(o.critic_output, MPI_COMM_WORLD);
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  if (!o.with_critic() && (!o.critic.empty() || !o.critic_output.empty()))
    log::warn("--advantage %s has no critic: --critic/--critic-output are unused", advantage_estimator_name(o.advantage));

  Rollouts ro = read_rollout_index(o.rollouts);
  if (ro.samples.empty()) throw Error(o.rollouts + ": no samples");
  if (int64_t(o.minibatches) > int64_t(ro.samples.size()))
    throw ConfigError("--minibatches " + std::to_string(o.minibatches) + ": more than the " + std::to_string(ro.samples.size()) +
                      " samples of " + o.rollouts + " (a minibatch would be empty)");
  check_same_architecture(o, ro);
  const image::ImageProcessor processor(o.preprocessor.empty() ? image::ImageProcessorOptions{}
                                                               : image::ImageProcessorOptions::from_json_file(o.preprocessor));
  // Each rank reads only the responses it trains on (1/N of the file's bytes).
  PpoBatch batch = plan_ppo_batch(ro, o.minibatches, o.seq_len, o.seed, world_rank(), world_size());
  const double read_bytes = double(read_rollout_responses(o.rollouts, MPI_COMM_WORLD, ppo_samples(batch), &ro));
  fill_ppo_documents(batch, ro, processor);
  log::info("read %.2f MB of the rollouts' %.2f MB of responses on rank 0", read_bytes / 1e6, double(batch.total_tokens) * 8 / 1e6);

  // ---- the networks: policy_k; critic_k (at the first iteration the policy's backbone + a new head) ----
  Trainee policy, critic;
  policy.m = model::load_qwen2_5_vl(o.policy, MPI_COMM_WORLD);
  policy.model_config = io::open_model_source(o.policy)->model_config();
  policy.params = train::model_parameters(policy.m);
  make_optimizer(policy, o, *comm, [&](const std::string& name) { return train::trained_by(name, o.train); });
  const int64_t policy_step = continue_optimizer(o.policy, *policy.opt);
  if (policy_step > 0 && policy_step != ro.policy_step)
    log::warn("the rollouts were generated by policy step %lld, this policy is step %lld", (long long)ro.policy_step,
              (long long)policy_step);
  PpoModels models;
  models.policy = &policy.m;
  models.processor = &processor;
  if (o.with_critic()) {
    const std::string& from = o.critic.empty() ? o.policy : o.critic;
    critic.m = model::load_qwen2_5_vl(from, MPI_COMM_WORLD);
    critic.model_config = io::open_model_source(from)->model_config();
    critic.params = train::model_parameters(critic.m);
    critic.params.push_back({"value_head.weight", value_head(o, critic.m.lm->config.hidden_size)});
    // The critic trains its backbone and head; lm_head and the vision tower stay frozen.
    make_optimizer(critic, o, *comm, [](const std::string& name) {
      return name.rfind("model.", 0) == 0 || name == "value_head.weight";
    });
    if (!o.critic.empty()) continue_optimizer(o.critic, *critic.opt);
    models.critic = &critic.m;
    models.value_head = critic.params.back().tensor;  // the optimizer's view of it
  }
  std::optional<model::Qwen2_5_VL> reference;
  if (o.kl_coef > 0) reference = model::load_qwen2_5_vl(o.reference, MPI_COMM_WORLD), models.reference = &*reference;

  // ---- the update ----
  std::vector<SampleState> samples;
  const ScoreStats score = score_rollouts(models, batch, ro, &samples);
  const AdvantageStats adv = estimate_advantages(o, batch, ro, &samples);
  const PolicyStats pol = update_policy(models, *policy.opt, o, batch, samples);
  CriticStats crit;
  if (o.with_critic()) crit = update_critic(models, *critic.opt, o, batch, samples);

  // ---- checkpoints: the critic first; the policy file marks the iteration as done ----
  if (o.with_critic()) save(critic, o, ro, o.critic_output, "critic");
  save(policy, o, ro, o.policy_output, "policy");

  // ---- the iteration's figures ----
  const double seconds = monotonic_seconds() - t_start;
  double reward = 0;
  for (const auto& s : ro.samples) reward += s.reward;
  reward /= double(ro.samples.size());
  const int passes = 1 + o.policy_steps + (o.with_critic() ? o.critic_steps : 0);
  nlohmann::json j = {
      {"iteration", ro.iteration}, {"policy_step", ro.iteration + 1}, {"advantage", advantage_estimator_name(o.advantage)},
      {"samples", int64_t(ro.samples.size())}, {"response_tokens", batch.total_tokens}, {"reward", reward},
      {"policy_loss", pol.loss}, {"clip_fraction", pol.clip_fraction}, {"approx_kl", pol.approx_kl}, {"kl", pol.kl},
      {"entropy", pol.entropy}, {"policy_grad_norm", pol.grad_norm},
      {"advantage_mean", adv.mean}, {"advantage_std", adv.std},
      {"logprob_mismatch_abs", score.mismatch_abs}, {"logprob_mismatch_mean", score.mismatch_mean},
      {"tokens_per_s", double(batch.total_tokens) * passes / seconds}, {"seconds", seconds},
      {"rollout_bytes_read_rank0", read_bytes}, {"model_bytes_read_rank0", double(io::shared_source_bytes_read())}};
  if (o.with_critic()) {
    j["value_loss"] = crit.loss, j["value_clip_fraction"] = crit.clip_fraction, j["critic_grad_norm"] = crit.grad_norm;
    j["explained_variance"] = adv.explained_variance;
  }
  if (world_rank() == 0) io::append_line(o.metrics, j.dump());
  log::info("iteration %lld (%s): reward %.3f | policy loss %.4f clip %.3f approx kl %.2e%s | value loss %.4f | grad norm %.3f / "
            "%.3f | expl. var %.3f | mismatch %.2e | %.0f tok/s",
            (long long)ro.iteration, advantage_estimator_name(o.advantage), reward, pol.loss, pol.clip_fraction,
            pol.approx_kl, o.kl_coef > 0 ? (" ref kl " + std::to_string(pol.kl)).c_str() : "", crit.loss, pol.grad_norm, crit.grad_norm, adv.explained_variance, score.mismatch_abs,
            j["tokens_per_s"].get<double>());
  return kExitOk;
}

}  // namespace ovr::rl
