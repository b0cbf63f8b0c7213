#include "rl/ppo_options.h"

#include <cmath>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::rl {

void add_ppo_options(Config& cfg) {
  cfg.options().add_options()
      ("policy", po::value<std::string>()->required(), "policy checkpoint of this iteration (file; or an HF model / SFT checkpoint at iteration 0)")
      ("critic", po::value<std::string>()->default_value(""), "critic checkpoint of this iteration (empty at iteration 0: the policy's backbone + a new value head)")
      ("rollouts", po::value<std::string>()->required(), "this iteration's rollout file (ovr_rollout)")
      ("policy-output", po::value<std::string>()->required(), "directory of policy checkpoints (step_N.h5, latest)")
      ("critic-output", po::value<std::string>()->default_value(""), "directory of critic checkpoints (gae; unused by grpo and rloo)")
      ("preprocessor", po::value<std::string>()->default_value(""), "preprocessor_config.json for image prompts (default: Qwen2.5-VL's)")
      ("policy-lr", po::value<double>()->default_value(1e-6), "policy learning rate")
      ("critic-lr", po::value<double>()->default_value(5e-6), "critic learning rate")
      ("warmup-steps", po::value<int64_t>()->default_value(50), "linear warm-up of both learning rates, in optimizer steps")
      ("adam-beta1", po::value<double>()->default_value(0.9), "AdamW beta1")
      ("adam-beta2", po::value<double>()->default_value(0.95), "AdamW beta2")
      ("adam-eps", po::value<double>()->default_value(1e-8), "AdamW epsilon")
      ("weight-decay", po::value<double>()->default_value(0.0), "AdamW weight decay (matrices)")
      ("max-grad-norm", po::value<double>()->default_value(1.0), "gradient clipping (0: none)")
      ("advantage", po::value<std::string>()->default_value("gae"), "advantage estimator: gae (critic, the paper), grpo or rloo (no critic; groups of --n samples)")
      ("gamma", po::value<double>()->default_value(1.0), "GAE discount")
      ("lambda", po::value<double>()->default_value(1.0), "GAE lambda")
      ("no-advantage-norm", po::bool_switch()->default_value(false), "gae: do not whiten advantages over the batch")
      ("group-std-eps", po::value<double>()->default_value(1e-6), "grpo: epsilon added to the group's reward std")
      ("clip-low", po::value<double>()->default_value(0.2), "policy ratio clip below 1")
      ("clip-high", po::value<double>()->default_value(0.2), "policy ratio clip above 1 (asymmetric: clip-higher)")
      ("dual-clip", po::value<double>()->default_value(0.0), "dual clip constant c > 1 for negative advantages (0: off)")
      ("value-clip", po::value<double>()->default_value(0.2), "value clip around the rollout-time values (0: off)")
      ("kl-coef", po::value<double>()->default_value(0.0), "KL penalty to --reference (k3 estimator; 0: off)")
      ("reference", po::value<std::string>()->default_value(""), "reference policy for the KL penalty")
      ("entropy-coef", po::value<double>()->default_value(0.0), "entropy bonus (0: off)")
      ("policy-steps", po::value<int>()->default_value(1), "passes over the minibatches for the policy")
      ("critic-steps", po::value<int>()->default_value(4), "passes over the minibatches for the critic (gae)")
      ("minibatches", po::value<int>()->default_value(1), "optimizer steps per pass (the samples split evenly)")
      ("seq-len", po::value<int64_t>()->default_value(8192), "tokens per packed row (a longer sample gets a row of its own)")
      ("train", po::value<std::string>()->default_value("llm"), "policy modules to train (the critic always trains its backbone and head)")
      ("zero-stage", po::value<int>()->default_value(2), "ZeRO stage (1 or 2)")
      ("bucket-mb", po::value<double>()->default_value(128), "communication bucket size, MiB of fp32")
      ("save-dtype", po::value<std::string>()->default_value("F32"), "model dtype in checkpoints: F32 or BF16")
      ("seed", po::value<uint64_t>()->default_value(0), "minibatch shuffling and value-head initialisation")
      ("metrics", po::value<std::string>()->default_value(""), "append the iteration's figures here (default: ppo_metrics.jsonl in --policy-output)");
}

PpoOptions ppo_options(const Config& cfg) {
  PpoOptions o;
  o.policy = cfg.get<std::string>("policy"), o.critic = cfg.get<std::string>("critic");
  o.rollouts = cfg.get<std::string>("rollouts");
  o.policy_output = cfg.get<std::string>("policy-output"), o.critic_output = cfg.get<std::string>("critic-output");
  o.reference = cfg.get<std::string>("reference"), o.preprocessor = cfg.get<std::string>("preprocessor");
  o.train = cfg.get<std::string>("train"), o.metrics = cfg.get<std::string>("metrics");
  if (o.metrics.empty()) o.metrics = io::join_path(o.policy_output, "ppo_metrics.jsonl");
  o.advantage = parse_advantage_estimator(cfg.get<std::string>("advantage"));
  o.gamma = cfg.get<double>("gamma"), o.lambda = cfg.get<double>("lambda");
  o.whiten_advantages = !cfg.get<bool>("no-advantage-norm");
  o.group_std_eps = cfg.get<double>("group-std-eps");
  o.clip = {cfg.get<double>("clip-low"), cfg.get<double>("clip-high"), cfg.get<double>("dual-clip")};
  o.value_clip = cfg.get<double>("value-clip");
  o.kl_coef = cfg.get<double>("kl-coef"), o.entropy_coef = cfg.get<double>("entropy-coef");
  o.policy_lr = cfg.get<double>("policy-lr"), o.critic_lr = cfg.get<double>("critic-lr");
  o.max_grad_norm = cfg.get<double>("max-grad-norm");
  o.warmup_steps = cfg.get<int64_t>("warmup-steps");
  o.adam = {cfg.get<double>("adam-beta1"), cfg.get<double>("adam-beta2"), cfg.get<double>("adam-eps"),
            cfg.get<double>("weight-decay")};
  o.policy_steps = cfg.get<int>("policy-steps"), o.critic_steps = cfg.get<int>("critic-steps");
  o.minibatches = cfg.get<int>("minibatches");
  o.seq_len = cfg.get<int64_t>("seq-len");
  o.zero_stage = cfg.get<int>("zero-stage");
  o.bucket_elems = int64_t(cfg.get<double>("bucket-mb") * (1 << 20) / 4);
  o.seed = cfg.get<uint64_t>("seed");
  o.run_config = cfg.to_json().dump();
  const std::string save_dtype = cfg.get<std::string>("save-dtype");

  if (o.policy_steps < 0 || o.critic_steps < 0) throw ConfigError("--policy-steps/--critic-steps: must be >= 0");
  if (o.minibatches < 1) throw ConfigError("--minibatches: must be at least 1");
  if (o.seq_len < 2) throw ConfigError("--seq-len: must be at least 2");
  if (o.gamma < 0 || o.gamma > 1 || o.lambda < 0 || o.lambda > 1) throw ConfigError("--gamma/--lambda: must be in [0, 1]");
  if (!(o.group_std_eps >= 0)) throw ConfigError("--group-std-eps: must be >= 0");
  if (o.clip.clip_low <= 0 || o.clip.clip_low >= 1 || o.clip.clip_high <= 0)
    throw ConfigError("--clip-low must be in (0, 1) and --clip-high > 0");
  if (o.clip.dual_clip != 0 && o.clip.dual_clip <= 1) throw ConfigError("--dual-clip: 0 (off) or a constant > 1");
  if (o.kl_coef < 0 || o.entropy_coef < 0 || o.max_grad_norm < 0)
    throw ConfigError("--kl-coef/--entropy-coef/--max-grad-norm: must be >= 0");
  if (o.kl_coef > 0 && o.reference.empty()) throw ConfigError("--kl-coef needs --reference CKPT");
  if (o.kl_coef == 0 && !o.reference.empty()) throw ConfigError("--reference is used only with --kl-coef > 0");
  auto positive = [](double v) { return v > 0 && std::isfinite(v); };
  if (!positive(o.policy_lr)) throw ConfigError("--policy-lr: must be a finite number > 0");
  if (o.with_critic() && !positive(o.critic_lr)) throw ConfigError("--critic-lr: must be a finite number > 0");
  if (o.warmup_steps < 0) throw ConfigError("--warmup-steps: must be >= 0");
  if (!(o.value_clip >= 0) || !std::isfinite(o.value_clip)) throw ConfigError("--value-clip: must be >= 0 (0: off)");
  if (!std::isfinite(o.max_grad_norm) || !std::isfinite(o.kl_coef) || !std::isfinite(o.entropy_coef))
    throw ConfigError("--max-grad-norm/--kl-coef/--entropy-coef: must be finite");
  if (!(o.adam.beta1 >= 0 && o.adam.beta1 < 1) || !(o.adam.beta2 >= 0 && o.adam.beta2 < 1))
    throw ConfigError("--adam-beta1/--adam-beta2: must be in [0, 1)");
  if (!positive(o.adam.eps)) throw ConfigError("--adam-eps: must be a finite number > 0");
  if (!(o.adam.weight_decay >= 0) || !std::isfinite(o.adam.weight_decay)) throw ConfigError("--weight-decay: must be >= 0");
  if (o.zero_stage != 1 && o.zero_stage != 2) throw ConfigError("--zero-stage: expected 1 or 2");
  if (!(cfg.get<double>("bucket-mb") > 0)) throw ConfigError("--bucket-mb: must be positive");
  if (save_dtype != "F32" && save_dtype != "BF16") throw ConfigError("--save-dtype: expected F32 or BF16");
  o.save_dtype = save_dtype == "BF16" ? io::DType::BF16 : io::DType::F32;
  if (o.with_critic() && o.critic_output.empty()) throw ConfigError("--critic-output: required with --advantage gae");
  return o;
}

}  // namespace ovr::rl
