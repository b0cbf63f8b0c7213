#include "rl/ppo_trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "dist/zero_optimizer.h"
#include "io/fs.h"
#include "io/tensor_store.h"
#include "io/torch_bridge.h"
#include "model/weights.h"
#include "rl/ppo.h"
#include "rl/rollout_store.h"
#include "train/checkpointing.h"
#include "train/lr_schedule.h"
#include "train/sft_batch.h"

namespace ovr::rl {

void add_ppo_options(Config& cfg) {
  cfg.options().add_options()
      ("policy", po::value<std::string>()->required(), "policy checkpoint of this iteration (file; or an HF model / SFT checkpoint at iteration 0)")
      ("critic", po::value<std::string>()->default_value(""), "critic checkpoint of this iteration (empty at iteration 0: the policy's backbone + a new value head)")
      ("rollouts", po::value<std::string>()->required(), "this iteration's rollout file (ovr_rollout)")
      ("policy-output", po::value<std::string>()->required(), "directory of policy checkpoints (step_N.h5, latest)")
      ("critic-output", po::value<std::string>()->required(), "directory of critic checkpoints")
      ("preprocessor", po::value<std::string>()->default_value(""), "preprocessor_config.json for image prompts (default: Qwen2.5-VL's)")
      ("policy-lr", po::value<double>()->default_value(1e-6), "policy learning rate")
      ("critic-lr", po::value<double>()->default_value(5e-6), "critic learning rate")
      ("warmup-steps", po::value<int64_t>()->default_value(50), "linear warm-up of both learning rates, in optimizer steps")
      ("adam-beta1", po::value<double>()->default_value(0.9), "AdamW beta1")
      ("adam-beta2", po::value<double>()->default_value(0.95), "AdamW beta2")
      ("adam-eps", po::value<double>()->default_value(1e-8), "AdamW epsilon")
      ("weight-decay", po::value<double>()->default_value(0.0), "AdamW weight decay (matrices)")
      ("max-grad-norm", po::value<double>()->default_value(1.0), "gradient clipping (0: none)")
      ("gamma", po::value<double>()->default_value(1.0), "GAE discount")
      ("lambda", po::value<double>()->default_value(1.0), "GAE lambda")
      ("no-advantage-norm", po::bool_switch()->default_value(false), "do not whiten advantages over the batch")
      ("clip-low", po::value<double>()->default_value(0.2), "policy ratio clip below 1")
      ("clip-high", po::value<double>()->default_value(0.2), "policy ratio clip above 1 (asymmetric: clip-higher)")
      ("dual-clip", po::value<double>()->default_value(0.0), "dual clip constant c > 1 for negative advantages (0: off)")
      ("value-clip", po::value<double>()->default_value(0.2), "value clip around the rollout-time values (0: off)")
      ("kl-coef", po::value<double>()->default_value(0.0), "KL penalty to --reference (k3 estimator; 0: off)")
      ("reference", po::value<std::string>()->default_value(""), "reference policy for the KL penalty")
      ("entropy-coef", po::value<double>()->default_value(0.0), "entropy bonus (0: off)")
      ("policy-steps", po::value<int>()->default_value(1), "passes over the minibatches for the policy")
      ("critic-steps", po::value<int>()->default_value(4), "passes over the minibatches for the critic")
      ("minibatches", po::value<int>()->default_value(1), "optimizer steps per pass (the samples split evenly)")
      ("seq-len", po::value<int64_t>()->default_value(8192), "tokens per packed row (a longer sample gets a row of its own)")
      ("train", po::value<std::string>()->default_value("llm"), "policy modules to train (the critic always trains its backbone and head)")
      ("zero-stage", po::value<int>()->default_value(2), "ZeRO stage (1 or 2)")
      ("bucket-mb", po::value<double>()->default_value(128), "communication bucket size, MiB of fp32")
      ("save-dtype", po::value<std::string>()->default_value("F32"), "model dtype in checkpoints: F32 or BF16")
      ("seed", po::value<uint64_t>()->default_value(0), "minibatch shuffling and value-head initialisation")
      ("metrics", po::value<std::string>()->default_value(""), "append the iteration's figures here (default: ppo_metrics.jsonl in --policy-output)");
}

namespace {


// A model being trained: weights, its trainable subset, and (critic) the value head.
struct Trainee {
  model::Qwen2_5_VL m;
  torch::nn::Linear value_head{nullptr};
  std::vector<train::NamedTensor> params;  // all, in checkpoint order
  std::unique_ptr<dist::ZeroAdamW> opt;
  std::string model_config;
};

bool is_ovr_checkpoint(const std::string& path) {
  return io::is_directory(path) ? io::path_exists(io::join_path(path, "latest"))
                                : path.size() > 3 && path.substr(path.size() - 3) == ".h5";
}

// Optimizer state continues only from our own PPO checkpoints (an SFT run's moments are not
// this objective's). Collective. Returns the checkpoint's step, 0 when it did not come from ovr_ppo.
int64_t continue_optimizer(const std::string& path, dist::ZeroAdamW& opt) {
  if (!is_ovr_checkpoint(path)) return 0;
  io::CheckpointReader r(path, MPI_COMM_WORLD);
  if (!r.attrs().extra.count("ppo")) return 0;
  opt.load(r, train::read_state_scalar(r, "/state/optimizer_steps"));
  return r.attrs().step;
}

// Per sample, its tokens' tensors (1-D, response tokens).
struct SampleState {
  at::Tensor old_logp, old_value, advantage, ret, ref_logp;
};

}  // namespace

int run_ppo(const Config& cfg) {
  const int rank = world_rank(), ranks = world_size();
  const auto t_start = std::chrono::steady_clock::now();
  const std::string policy_path = cfg.get<std::string>("policy"), critic_path = cfg.get<std::string>("critic");
  const std::string policy_out = cfg.get<std::string>("policy-output"), critic_out = cfg.get<std::string>("critic-output");
  const int policy_steps = cfg.get<int>("policy-steps"), critic_steps = cfg.get<int>("critic-steps");
  const int minibatches = cfg.get<int>("minibatches");
  const int64_t seq_len = cfg.get<int64_t>("seq-len");
  const double gamma = cfg.get<double>("gamma"), lambda = cfg.get<double>("lambda");
  const double kl_coef = cfg.get<double>("kl-coef"), entropy_coef = cfg.get<double>("entropy-coef");
  const double max_norm = cfg.get<double>("max-grad-norm"), value_clip = cfg.get<double>("value-clip");
  PolicyLossOptions plo{cfg.get<double>("clip-low"), cfg.get<double>("clip-high"), cfg.get<double>("dual-clip")};
  if (policy_steps < 0 || critic_steps < 0) throw ConfigError("--policy-steps/--critic-steps: must be >= 0");
  if (minibatches < 1) throw ConfigError("--minibatches: must be at least 1");
  if (seq_len < 2) throw ConfigError("--seq-len: must be at least 2");
  if (gamma < 0 || gamma > 1 || lambda < 0 || lambda > 1) throw ConfigError("--gamma/--lambda: must be in [0, 1]");
  if (plo.clip_low <= 0 || plo.clip_low >= 1 || plo.clip_high <= 0) throw ConfigError("--clip-low must be in (0, 1) and --clip-high > 0");
  if (plo.dual_clip != 0 && plo.dual_clip <= 1) throw ConfigError("--dual-clip: 0 (off) or a constant > 1");
  if (kl_coef < 0 || entropy_coef < 0 || max_norm < 0) throw ConfigError("--kl-coef/--entropy-coef/--max-grad-norm: must be >= 0");
  if (kl_coef > 0 && cfg.get<std::string>("reference").empty()) throw ConfigError("--kl-coef needs --reference CKPT");
  const std::string save_dtype_name = cfg.get<std::string>("save-dtype");
  if (save_dtype_name != "F32" && save_dtype_name != "BF16") throw ConfigError("--save-dtype: expected F32 or BF16");
  const io::DType save_dtype = save_dtype_name == "BF16" ? io::DType::BF16 : io::DType::F32;
  const dist::AdamWOptions adam{cfg.get<double>("adam-beta1"), cfg.get<double>("adam-beta2"), cfg.get<double>("adam-eps"),
                                cfg.get<double>("weight-decay")};
  const uint64_t seed = cfg.get<uint64_t>("seed");
  const int stage = cfg.get<int>("zero-stage");
  const int64_t bucket = int64_t(cfg.get<double>("bucket-mb") * (1 << 20) / 4);
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);

  // ---- rollouts -> documents (prompt + response; the targets are the response tokens) ----
  const Rollouts ro = read_rollouts(cfg.get<std::string>("rollouts"));
  if (ro.samples.empty()) throw Error(cfg.get<std::string>("rollouts") + ": no samples");
  const std::string pre = cfg.get<std::string>("preprocessor");
  const model::ImageProcessor processor(pre.empty() ? model::ImageProcessorOptions{} : model::ImageProcessorOptions::from_json_file(pre));
  train::SftDataset data;
  std::map<std::string, std::array<int64_t, 3>> grids;
  for (const RolloutSample& s : ro.samples) {
    const RolloutGroup& g = ro.groups[size_t(s.group)];
    train::SftDocument d;
    d.ids = g.prompt_tokens;
    d.ids.insert(d.ids.end(), s.tokens.begin(), s.tokens.end());
    d.loss_mask.assign(g.prompt_tokens.size(), 0);
    d.loss_mask.insert(d.loss_mask.end(), s.tokens.size(), 1);
    for (const std::string& path : g.images) {
      if (!grids.count(path)) grids[path] = processor.process_file(path).grid_thw;
      d.images.push_back({path, grids[path]});
    }
    data.docs.push_back(std::move(d));
  }
  const int64_t n_samples = int64_t(ro.samples.size());
  int64_t total_tokens = 0;
  for (const auto& s : ro.samples) total_tokens += int64_t(s.tokens.size());
  if (total_tokens == 0) throw Error("the rollouts hold no response tokens");

  // ---- models ----
  Trainee policy, critic;
  policy.m = model::load_qwen2_5_vl(policy_path);
  policy.model_config = io::open_model_source(policy_path)->model_config();
  const bool first_iteration = critic_path.empty();
  critic.m = model::load_qwen2_5_vl(first_iteration ? policy_path : critic_path);
  critic.model_config = first_iteration ? policy.model_config : io::open_model_source(critic_path)->model_config();
  {
    // PyTorch's default Linear initialisation, kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in),
    // 1/sqrt(fan_in)) (the paper's "U(-sqrt5, sqrt5)"), no bias; seeded, so every rank agrees.
    torch::manual_seed(seed);
    critic.value_head = torch::nn::Linear(torch::nn::LinearOptions(critic.m.lm->config.hidden_size, 1).bias(false));
  }
  if (!first_iteration) {
    auto src = io::open_model_source(critic_path);
    bool found = false;
    for (const auto& t : src->tensors()) found |= t.name == "value_head.weight";
    if (!found) throw Error(critic_path + ": no value_head.weight (not a critic checkpoint)");
    torch::NoGradGuard g;
    critic.value_head->weight.copy_(io::read_tensor(*src, "value_head.weight").to(at::kFloat));
  }
  std::optional<model::Qwen2_5_VL> reference;
  if (kl_coef > 0) reference = model::load_qwen2_5_vl(cfg.get<std::string>("reference"));

  policy.params = train::model_parameters(policy.m);
  critic.params = train::model_parameters(critic.m);
  critic.params.push_back({"value_head.weight", critic.value_head->weight});
  std::vector<dist::ZeroParam> ptrain, ctrain;
  for (auto& p : policy.params) {
    const bool on = train::trained_by(p.name, cfg.get<std::string>("train"));
    p.tensor.requires_grad_(on);
    if (on) ptrain.push_back({p.name, p.tensor, p.tensor.dim() >= 2});
  }
  for (auto& p : critic.params) {  // the critic: its backbone and head; lm_head and vision frozen
    const bool on = p.name.rfind("model.", 0) == 0 || p.name == "value_head.weight";
    p.tensor.requires_grad_(on);
    if (on) ctrain.push_back({p.name, p.tensor, p.tensor.dim() >= 2});
  }
  if (ptrain.empty()) throw ConfigError("--train selects no parameter of the policy");
  policy.opt = std::make_unique<dist::ZeroAdamW>(ptrain, *comm, stage, adam, bucket);
  critic.opt = std::make_unique<dist::ZeroAdamW>(ctrain, *comm, stage, adam, bucket);
  const int64_t policy_step = continue_optimizer(policy_path, *policy.opt);
  if (!first_iteration) continue_optimizer(critic_path, *critic.opt);
  if (policy_step > 0 && policy_step != ro.policy_step)
    log::warn("the rollouts were generated by policy step %lld, this policy is step %lld", (long long)ro.policy_step,
              (long long)policy_step);

  // ---- minibatches and this rank's rows ----
  const std::vector<int64_t> order = train::epoch_order(n_samples, seed, ro.iteration);
  std::vector<std::vector<train::PackedRow>> mb_rows;   // per minibatch, this rank's rows
  std::vector<int64_t> mb_tokens, mb_micro;            // response tokens (global), micro-batches per rank
  for (int mb = 0; mb < minibatches; ++mb) {
    const std::vector<int64_t> members(order.begin() + n_samples * mb / minibatches,
                                       order.begin() + n_samples * (mb + 1) / minibatches);
    const auto rows = train::pack_rows(members, data.docs, seq_len, true);
    const int64_t r_count = int64_t(rows.size());
    mb_rows.emplace_back(rows.begin() + r_count * rank / ranks, rows.begin() + r_count * (rank + 1) / ranks);
    int64_t tokens = 0;
    for (int64_t s : members) tokens += int64_t(ro.samples[size_t(s)].tokens.size());
    mb_tokens.push_back(tokens);
    mb_micro.push_back((r_count + ranks - 1) / ranks);
  }

  auto rows_batch = [&](const train::PackedRow& row) { return train::make_sft_batch(data, {&row}, policy.m.image_token_id, 2); };
  auto values_of = [&](const train::SftBatch& b) {
    const auto st = train::hidden_at_targets(critic.m, b, &processor, false);
    return critic.value_head(st.hidden).squeeze(-1);
  };
  // Splits a row's per-target tensor by its documents (each contributes its response tokens).
  auto per_doc = [&](const train::PackedRow& row, const at::Tensor& t) {
    std::vector<at::Tensor> out;
    int64_t at = 0;
    for (int64_t d : row.docs) {
      const int64_t n = int64_t(ro.samples[size_t(d)].tokens.size());
      out.push_back(t.narrow(0, at, n));
      at += n;
    }
    return out;
  };

  // ---- 1. old log-probs and values, with the weights as they are ----
  std::vector<SampleState> st(static_cast<size_t>(n_samples));
  double mismatch[3] = {0, 0, 0};  // sum |logp - behaviour|, sum (behaviour - logp), tokens
  {
    torch::NoGradGuard no_grad;
    policy.m.lm->eval(), critic.m.lm->eval();
    for (const auto& rows : mb_rows)
      for (const auto& row : rows) {
        const auto b = rows_batch(row);
        const auto lp = per_doc(row, train::target_logprobs(policy.m, train::hidden_at_targets(policy.m, b, &processor, false)).logprob);
        const auto v = per_doc(row, values_of(b));
        std::vector<at::Tensor> ref;
        if (reference)
          ref = per_doc(row, train::target_logprobs(*reference, train::hidden_at_targets(*reference, b, &processor, false)).logprob);
        for (size_t k = 0; k < row.docs.size(); ++k) {
          SampleState& s = st[size_t(row.docs[k])];
          s.old_logp = lp[k].clone();
          s.old_value = v[k].clone();
          if (reference) s.ref_logp = ref[k].clone();
          const auto& beh = ro.samples[size_t(row.docs[k])].logprobs;
          const at::Tensor b_lp = torch::tensor(beh, at::kFloat);
          mismatch[0] += (s.old_logp - b_lp).abs().sum().item<double>();
          mismatch[1] += (b_lp - s.old_logp).sum().item<double>();
          mismatch[2] += double(beh.size());
        }
      }
  }

  // ---- 2. GAE (reward on the last token) and whitening over all ranks ----
  double mom[7] = {0, 0, 0, 0, 0, 0, 0};  // adv sum, sumsq, count; returns sum, sumsq; (R - V) sum, sumsq
  for (const auto& rows : mb_rows)
    for (const auto& row : rows)
      for (int64_t d : row.docs) {
        SampleState& s = st[size_t(d)];
        const int64_t n = s.old_value.numel();
        at::Tensor rewards = torch::zeros({n}, at::kFloat);
        if (n > 0) rewards[n - 1] = ro.samples[size_t(d)].reward;
        const Advantages a = gae(rewards, s.old_value, {0, n}, gamma, lambda);
        s.advantage = a.advantages;
        s.ret = a.returns;
        int64_t count = 0;
        add_moments(s.advantage, &mom[0], &mom[1], &count);
        mom[2] += double(count);
        mom[3] += s.ret.sum().item<double>(), mom[4] += s.ret.pow(2).sum().item<double>();
        const at::Tensor err = s.ret - s.old_value;
        mom[5] += err.sum().item<double>(), mom[6] += err.pow(2).sum().item<double>();
      }
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mom, 7, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mismatch, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  const MeanStd adv = moments(mom[0], mom[1], int64_t(mom[2]));
  const MeanStd rets = moments(mom[3], mom[4], int64_t(mom[2]));
  const MeanStd errs = moments(mom[5], mom[6], int64_t(mom[2]));
  const double explained_variance = rets.std > 0 ? 1.0 - (errs.std * errs.std) / (rets.std * rets.std) : 0.0;
  if (!cfg.get<bool>("no-advantage-norm"))
    for (auto& s : st)
      if (s.advantage.defined()) s.advantage = whiten(s.advantage, adv.mean, adv.std);

  auto cat_of = [&](const train::PackedRow& row, at::Tensor SampleState::*field) {
    std::vector<at::Tensor> parts;
    for (int64_t d : row.docs) parts.push_back(st[size_t(d)].*field);
    return torch::cat(parts);
  };

  // ---- 3. policy ----
  const int64_t warmup = cfg.get<int64_t>("warmup-steps");
  double pf[6] = {0, 0, 0, 0, 0, 0};  // loss sum, clipped, approx kl, tokens, kl sum, entropy sum
  double policy_norm = 0, critic_norm = 0;
  policy.m.lm->train();
  for (int pass = 0; pass < policy_steps; ++pass)
    for (int mb = 0; mb < minibatches; ++mb) {
      const auto& rows = mb_rows[size_t(mb)];
      for (int64_t k = 0; k < mb_micro[size_t(mb)]; ++k) {
        if (k < int64_t(rows.size())) {  // ranks with fewer rows still join every reduction
          const auto& row = rows[size_t(k)];
          const auto b = rows_batch(row);
          const auto states = train::hidden_at_targets(policy.m, b, &processor, false);
          const train::TokenLogprobs scored = train::target_logprobs(policy.m, states, /*with_entropy=*/entropy_coef > 0);
          const at::Tensor& logp = scored.logprob;
          PolicyLoss pl = policy_loss(logp, cat_of(row, &SampleState::old_logp), cat_of(row, &SampleState::advantage), plo);
          at::Tensor loss = pl.loss_sum;
          if (kl_coef > 0) {
            const at::Tensor kl = kl_penalty_sum(logp, cat_of(row, &SampleState::ref_logp));
            loss = loss + kl_coef * kl;
            pf[4] += kl.item<double>();
          }
          if (entropy_coef > 0) {
            const at::Tensor h = scored.entropy.sum();
            loss = loss - entropy_coef * h;
            pf[5] += h.item<double>();
          }
          (loss / double(mb_tokens[size_t(mb)])).backward();
          pf[0] += pl.loss_sum.item<double>(), pf[1] += double(pl.clipped), pf[2] += pl.approx_kl_sum;
          pf[3] += double(logp.numel());
        }
        policy.opt->reduce_micro_batch();
      }
      const train::LrSchedule lr{"constant", cfg.get<double>("policy-lr"), warmup, 1, 0.0};
      policy_norm = policy.opt->step(lr.at(policy.opt->steps_taken()), max_norm);
    }

  // ---- 4. critic ----
  double cf[3] = {0, 0, 0};  // loss sum, clipped, tokens
  critic.m.lm->train();
  for (int pass = 0; pass < critic_steps; ++pass)
    for (int mb = 0; mb < minibatches; ++mb) {
      const auto& rows = mb_rows[size_t(mb)];
      for (int64_t k = 0; k < mb_micro[size_t(mb)]; ++k) {
        if (k < int64_t(rows.size())) {
          const auto& row = rows[size_t(k)];
          const at::Tensor v = values_of(rows_batch(row));
          ValueLoss vl = value_loss(v, cat_of(row, &SampleState::old_value), cat_of(row, &SampleState::ret), value_clip);
          (vl.loss_sum / double(mb_tokens[size_t(mb)])).backward();
          cf[0] += vl.loss_sum.item<double>(), cf[1] += double(vl.clipped), cf[2] += double(v.numel());
        }
        critic.opt->reduce_micro_batch();
      }
      const train::LrSchedule lr{"constant", cfg.get<double>("critic-lr"), warmup, 1, 0.0};
      critic_norm = critic.opt->step(lr.at(critic.opt->steps_taken()), max_norm);
    }
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, pf, 6, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, cf, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));

  // ---- 5. checkpoints: the critic first; the policy file marks the iteration as done ----
  const int64_t next = ro.iteration + 1;
  nlohmann::json ppo_attr = {{"iteration", ro.iteration}, {"rollouts", cfg.get<std::string>("rollouts")}};
  auto save = [&](Trainee& t, const std::string& dir, const char* role) {
    io::CheckpointAttrs attrs;
    attrs.step = next;
    attrs.role = role;
    attrs.model_config = t.model_config;
    attrs.run_config = cfg.to_json().dump();
    attrs.extra["ppo"] = ppo_attr.dump();
    io::make_dirs(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const std::string path = io::join_path(dir, train::step_file_name(next));
    train::write_training_checkpoint(path, attrs, t.params, save_dtype, *t.opt,
                                     {{"/state/step", next}, {"/state/optimizer_steps", t.opt->steps_taken()}});
    log::info("checkpoint %s", path.c_str());
  };
  save(critic, critic_out, "critic");
  save(policy, policy_out, "policy");

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  double reward = 0;
  for (const auto& s : ro.samples) reward += s.reward;
  const double tok = std::max(1.0, pf[3]);
  const nlohmann::json j = {
      {"iteration", ro.iteration}, {"policy_step", next}, {"samples", n_samples}, {"response_tokens", total_tokens},
      {"reward", reward / double(n_samples)}, {"policy_loss", pf[0] / tok}, {"clip_fraction", pf[1] / tok},
      {"approx_kl", pf[2] / tok}, {"kl", pf[4] / tok}, {"entropy", pf[5] / tok},
      {"value_loss", cf[0] / std::max(1.0, cf[2])}, {"value_clip_fraction", cf[1] / std::max(1.0, cf[2])},
      {"policy_grad_norm", policy_norm}, {"critic_grad_norm", critic_norm},
      {"advantage_mean", adv.mean}, {"advantage_std", adv.std}, {"explained_variance", explained_variance},
      {"logprob_mismatch_abs", mismatch[0] / std::max(1.0, mismatch[2])},
      {"logprob_mismatch_mean", mismatch[1] / std::max(1.0, mismatch[2])},
      {"tokens_per_s", double(total_tokens) * (1 + policy_steps + critic_steps) / seconds}, {"seconds", seconds}};
  if (rank == 0) {
    std::string metrics = cfg.get<std::string>("metrics");
    if (metrics.empty()) metrics = io::join_path(policy_out, "ppo_metrics.jsonl");
    io::append_line(metrics, j.dump());
  }
  log::info("iteration %lld: reward %.3f | policy loss %.4f clip %.3f kl %.2e | value loss %.4f | grad norm %.3f / %.3f | "
            "expl. var %.3f | mismatch %.2e | %.0f tok/s",
            (long long)ro.iteration, reward / double(n_samples), pf[0] / tok, pf[1] / tok, pf[2] / tok,
            cf[0] / std::max(1.0, cf[2]), policy_norm, critic_norm, explained_variance, mismatch[0] / std::max(1.0, mismatch[2]),
            j["tokens_per_s"].get<double>());
  return kExitOk;
}

}  // namespace ovr::rl
