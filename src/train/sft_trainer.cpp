#include "train/sft_trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"
#include "common/signals.h"
#include "dist/zero_optimizer.h"
#include "io/checksum.h"
#include "io/dtype.h"
#include "io/fs.h"
#include "io/model_copy.h"
#include "io/run_lock.h"
#include "io/torch_bridge.h"
#include "model/weights.h"
#include "train/checkpointing.h"
#include "train/lr_schedule.h"
#include "train/sft_batch.h"

namespace ovr::train {

void add_sft_options(Config& cfg) {
  cfg.options().add_options()
      ("init", po::value<std::string>()->required(), "the model to start from: a Hugging Face directory, .safetensors or an ovr checkpoint")
      ("data", po::value<std::vector<std::string>>()->required()->multitoken(), "training JSONL file(s) of {\"messages\": [...]}")
      ("output,o", po::value<std::string>()->required(), "checkpoint directory (step_N.h5, latest, metrics.jsonl); a run resumes from its latest")
      ("tokenizer", po::value<std::string>()->default_value(""), "tokenizer.json or a directory holding one (default: the --init directory)")
      ("preprocessor", po::value<std::string>()->default_value(""), "preprocessor_config.json for image rows (default: the --init directory's, else Qwen2.5-VL's defaults)")
      ("seq-len", po::value<int64_t>()->default_value(4096), "tokens per packed row (and the longest document)")
      ("no-packing", po::bool_switch()->default_value(false), "one document per row (padded) instead of packed rows")
      ("overlong", po::value<std::string>()->default_value("truncate"), "documents over --seq-len: truncate or drop (rows with images are always dropped)")
      ("skip-bad-rows", po::bool_switch()->default_value(false), "skip and count malformed JSONL rows instead of stopping at the first")
      ("epochs", po::value<int64_t>()->default_value(1), "passes over the data")
      ("global-batch", po::value<int64_t>()->default_value(8), "rows per optimizer step (= micro-batch x accumulation x ranks)")
      ("global-batch-tokens", po::value<int64_t>()->default_value(0), "instead of --global-batch: tokens per step, a multiple of --seq-len")
      ("micro-batch", po::value<int64_t>()->default_value(1), "rows per forward/backward pass")
      ("lr", po::value<double>()->default_value(1e-5), "peak learning rate")
      ("lr-schedule", po::value<std::string>()->default_value("cosine"), "after warm-up: cosine, linear or constant")
      ("warmup-steps", po::value<int64_t>()->default_value(0), "linear warm-up steps")
      ("warmup-ratio", po::value<double>()->default_value(0.0), "warm-up as a fraction of all steps (when --warmup-steps is 0)")
      ("min-lr-ratio", po::value<double>()->default_value(0.0), "floor of the decay, as a fraction of --lr")
      ("adam-beta1", po::value<double>()->default_value(0.9), "AdamW beta1")
      ("adam-beta2", po::value<double>()->default_value(0.999), "AdamW beta2")
      ("adam-eps", po::value<double>()->default_value(1e-8), "AdamW epsilon")
      ("weight-decay", po::value<double>()->default_value(0.0), "AdamW weight decay (matrices and embeddings only, as Hugging Face's Trainer)")
      ("max-grad-norm", po::value<double>()->default_value(1.0), "clip the global gradient norm (0: no clipping)")
      ("train", po::value<std::string>()->default_value("llm"), "modules to train, comma-separated: llm, vision, merger, all (the rest is frozen)")
      ("zero-stage", po::value<int>()->default_value(2), "ZeRO stage: 1 (optimizer state sharded) or 2 (and gradients)")
      ("bucket-mb", po::value<double>()->default_value(128), "communication bucket size, MiB of fp32")
      ("device", po::value<std::string>()->default_value("auto"), "cpu, cuda or auto (cuda when available; rank i uses local GPU i)")
      ("comm", po::value<std::string>()->default_value("auto"), "gradient communication: mpi, nccl or auto (nccl on cuda)")
      ("checkpoint-activations", po::bool_switch()->default_value(false), "recompute each layer in backward (long sequences)")
      ("save-every", po::value<int64_t>()->default_value(500), "checkpoint every N steps (0: only at the end and on a stop signal)")
      ("keep-last", po::value<int64_t>()->default_value(0), "delete older step checkpoints, keeping the last N (0: keep all)")
      ("save-dtype", po::value<std::string>()->default_value("F32"), "dtype of the model tensors in checkpoints: F32 or BF16 (the optimizer state is always fp32)")
      ("seed", po::value<uint64_t>()->default_value(0), "data shuffling seed")
      ("log-every", po::value<int64_t>()->default_value(1), "progress line every N steps")
      ("no-resume", po::bool_switch()->default_value(false), "refuse to start when --output already has a checkpoint")
      ("stop-after-steps", po::value<int64_t>()->default_value(0), "end this invocation after N steps as if stopped by a signal (checkpoint, exit 75): fixed-length allocations, tests");
}

namespace {

struct Settings {
  std::string init, output, tokenizer, preprocessor, overlong, schedule, train, device, comm, save_dtype;
  std::vector<std::string> data;
  int64_t seq_len, epochs, global_batch, micro_batch, warmup_steps, save_every, keep_last, log_every, stop_after;
  double lr, warmup_ratio, min_lr_ratio, max_grad_norm, bucket_mb;
  dist::AdamWOptions adam;
  int zero_stage;
  uint64_t seed;
  bool packing, skip_bad_rows, checkpoint_activations, no_resume;
};

Settings read_settings(const Config& cfg) {
  Settings s;
  s.init = cfg.get<std::string>("init");
  s.data = cfg.get<std::vector<std::string>>("data");
  s.output = cfg.get<std::string>("output");
  s.tokenizer = cfg.get<std::string>("tokenizer");
  s.preprocessor = cfg.get<std::string>("preprocessor");
  s.seq_len = cfg.get<int64_t>("seq-len");
  s.packing = !cfg.get<bool>("no-packing");
  s.overlong = cfg.get<std::string>("overlong");
  s.skip_bad_rows = cfg.get<bool>("skip-bad-rows");
  s.epochs = cfg.get<int64_t>("epochs");
  s.global_batch = cfg.get<int64_t>("global-batch");
  s.micro_batch = cfg.get<int64_t>("micro-batch");
  s.lr = cfg.get<double>("lr");
  s.schedule = cfg.get<std::string>("lr-schedule");
  s.warmup_steps = cfg.get<int64_t>("warmup-steps");
  s.warmup_ratio = cfg.get<double>("warmup-ratio");
  s.min_lr_ratio = cfg.get<double>("min-lr-ratio");
  s.adam = {cfg.get<double>("adam-beta1"), cfg.get<double>("adam-beta2"), cfg.get<double>("adam-eps"),
            cfg.get<double>("weight-decay")};
  s.max_grad_norm = cfg.get<double>("max-grad-norm");
  s.train = cfg.get<std::string>("train");
  s.zero_stage = cfg.get<int>("zero-stage");
  s.bucket_mb = cfg.get<double>("bucket-mb");
  s.device = cfg.get<std::string>("device");
  s.comm = cfg.get<std::string>("comm");
  s.checkpoint_activations = cfg.get<bool>("checkpoint-activations");
  s.save_every = cfg.get<int64_t>("save-every");
  s.keep_last = cfg.get<int64_t>("keep-last");
  s.save_dtype = cfg.get<std::string>("save-dtype");
  s.seed = cfg.get<uint64_t>("seed");
  s.log_every = cfg.get<int64_t>("log-every");
  s.no_resume = cfg.get<bool>("no-resume");
  s.stop_after = cfg.get<int64_t>("stop-after-steps");

  const int ranks = world_size();
  if (s.seq_len < 2) throw ConfigError("--seq-len: must be at least 2");
  if (s.epochs < 1) throw ConfigError("--epochs: must be at least 1");
  if (s.micro_batch < 1) throw ConfigError("--micro-batch: must be at least 1");
  const int64_t tokens = cfg.get<int64_t>("global-batch-tokens");
  if (tokens < 0) throw ConfigError("--global-batch-tokens: must be >= 0");
  if (tokens > 0) {
    if (!cfg.vm()["global-batch"].defaulted())
      throw ConfigError("--global-batch and --global-batch-tokens both given: use one (tokens / --seq-len rows per step)");
    if (tokens % s.seq_len) throw ConfigError("--global-batch-tokens " + std::to_string(tokens) + " is not a multiple of --seq-len " + std::to_string(s.seq_len));
    s.global_batch = tokens / s.seq_len;
  }
  if (s.global_batch < 1) throw ConfigError("--global-batch: must be at least 1");
  if (s.global_batch % (s.micro_batch * ranks))
    throw ConfigError("--global-batch " + std::to_string(s.global_batch) + " is not a multiple of --micro-batch " +
                      std::to_string(s.micro_batch) + " x " + std::to_string(ranks) + " ranks");
  if (s.zero_stage != 1 && s.zero_stage != 2) throw ConfigError("--zero-stage: expected 1 or 2, got " + std::to_string(s.zero_stage));
  train::trained_by("model.", s.train);  // throws naming a module --train does not know
  if (s.warmup_ratio < 0 || s.warmup_ratio >= 1) throw ConfigError("--warmup-ratio: must be in [0, 1)");
  if (s.max_grad_norm < 0) throw ConfigError("--max-grad-norm: must be >= 0");
  if (!(s.bucket_mb > 0)) throw ConfigError("--bucket-mb: must be positive");
  if (s.adam.beta1 < 0 || s.adam.beta1 >= 1 || s.adam.beta2 < 0 || s.adam.beta2 >= 1)
    throw ConfigError("--adam-beta1/--adam-beta2: must be in [0, 1)");
  if (!(s.adam.eps > 0)) throw ConfigError("--adam-eps: must be positive");
  if (s.adam.weight_decay < 0) throw ConfigError("--weight-decay: must be >= 0");
  if (s.save_every < 0 || s.keep_last < 0 || s.stop_after < 0) throw ConfigError("--save-every/--keep-last/--stop-after-steps: must be >= 0");
  if (s.log_every < 1) throw ConfigError("--log-every: must be at least 1");
  if (s.save_dtype != "F32" && s.save_dtype != "BF16") throw ConfigError("--save-dtype: expected F32 or BF16, got '" + s.save_dtype + "'");
  if (s.device != "auto" && s.device != "cpu" && s.device != "cuda") throw ConfigError("--device: expected cpu, cuda or auto, got '" + s.device + "'");
  if (s.comm != "auto" && s.comm != "mpi" && s.comm != "nccl") throw ConfigError("--comm: expected mpi, nccl or auto, got '" + s.comm + "'");
  LrSchedule probe{s.schedule, s.lr, 0, 1, s.min_lr_ratio};
  probe.validate();
  return s;
}


int local_rank() {
  MPI_Comm node;
  OVR_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

// bf16 autocast on CUDA (the API was renamed in LibTorch 2.4).
void set_cuda_autocast(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, on);
  if (on) at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
  at::autocast::set_enabled(on);
  if (on) at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
  if (!on) at::autocast::clear_cache();
}

std::string duration(double seconds) {
  const long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

// What a checkpoint's data cursor means: resuming under other settings would silently train on
// other rows, so they must match.
nlohmann::json plan_identity(const Settings& s, const SftDataset& data) {
  return {{"data_fingerprint", data.fingerprint}, {"documents", data.docs.size()}, {"seed", s.seed},
          {"seq_len", s.seq_len}, {"packing", s.packing}, {"global_batch", s.global_batch}, {"epochs", s.epochs}};
}

// ---- the steps of run_sft ----

// This rank's device (one GPU per rank on a node, or the CPU) and the communicator between ranks.
struct Placement {
  bool cuda = false;
  at::Device device{at::kCPU};
  std::unique_ptr<dist::Communicator> comm;
};

Placement place_on_devices(const Settings& s) {
  Placement p;
  p.cuda = s.device == "cuda" || (s.device == "auto" && torch::cuda::is_available());
  if (p.cuda && !torch::cuda::is_available()) throw ConfigError("--device cuda: this LibTorch build or machine has no CUDA device");
  if (p.cuda) p.device = at::Device(at::kCUDA, int(local_rank() % torch::cuda::device_count()));
  const std::string kind = s.comm == "auto" ? (p.cuda ? "nccl" : "mpi") : s.comm;
  if (kind == "nccl" && !p.cuda) throw ConfigError("--comm nccl needs --device cuda");
  if (kind == "mpi" && p.cuda) throw ConfigError("--comm mpi works on host memory: use --device cpu, or --comm nccl on GPUs");
  p.comm = kind == "nccl" ? dist::make_nccl_communicator(MPI_COMM_WORLD, p.device.index())
                          : dist::make_mpi_communicator(MPI_COMM_WORLD);
  return p;
}

// What the loop trains on: the model, its image processor, the tokenized data and the plan of
// every step's rows.
struct SftRun {
  model::Qwen2_5_VL m;
  std::string model_config;
  std::optional<image::ImageProcessor> processor;
  SftDataset data;
  TrainingPlan plan;
  std::vector<NamedTensor> params;  // all, in checkpoint order
  bool train_vision = false;
};

void load_model_and_data(const Settings& s, SftRun* run) {
  run->m = model::load_qwen2_5_vl(s.init, MPI_COMM_WORLD);
  run->model_config = io::open_model_source(s.init)->model_config();
  run->m.lm->checkpoint_activations = s.checkpoint_activations;
  const std::string tok_path = !s.tokenizer.empty() ? s.tokenizer : s.init;
  if (s.tokenizer.empty() && !io::path_exists(io::join_path(s.init, "tokenizer.json")))
    throw ConfigError("--tokenizer: required (" + s.init + " is not a directory holding tokenizer.json)");
  const text::Tokenizer tok(tok_path);
  if (run->m.visual) {
    std::string pre = s.preprocessor;
    if (pre.empty() && io::path_exists(io::join_path(s.init, "preprocessor_config.json"))) pre = s.init;
    run->processor.emplace(pre.empty() ? image::ImageProcessorOptions{} : image::ImageProcessorOptions::from_json_file(pre));
  }
  SftDataOptions data_opt;
  data_opt.seq_len = s.seq_len;
  data_opt.overlong = s.overlong;
  data_opt.skip_bad_rows = s.skip_bad_rows;
  run->data = load_sft_jsonl(s.data, tok, run->processor ? &*run->processor : nullptr, data_opt);
  run->plan = plan_training(run->data, s.epochs, s.seed, s.seq_len, s.packing, s.global_batch);
  if (run->plan.total_steps == 0)
    throw ConfigError("--global-batch " + std::to_string(s.global_batch) + " is more rows than an epoch has (" +
                      std::to_string(run->plan.epochs[0].size()) + ")");
  const SftDataset& d = run->data;
  log::info("data: %zu documents (%lld malformed rows skipped, %lld truncated, %lld dropped over --seq-len, %lld without "
            "targets); %lld steps of %lld rows over %lld epoch(s); %lld rows left out at epoch ends",
            d.docs.size(), (long long)d.bad_rows, (long long)d.truncated, (long long)d.dropped_overlong,
            (long long)d.dropped_no_loss, (long long)run->plan.total_steps, (long long)s.global_batch, (long long)s.epochs,
            (long long)run->plan.rows_left_out);
}

// The model on its device, --train's parameters trainable (the rest frozen), and their ZeRO AdamW.
std::unique_ptr<dist::ZeroAdamW> make_optimizer(const Settings& s, const Placement& p, SftRun* run) {
  model::Qwen2_5_VL& m = run->m;
  m.lm->to(p.device);
  if (m.visual) m.visual->to(p.device);
  std::vector<dist::ZeroParam> trainable;
  run->params = model_parameters(m);
  for (const NamedTensor& t : run->params) {
    const bool on = train::trained_by(t.name, s.train);
    t.tensor.requires_grad_(on);
    if (on) trainable.push_back({t.name, t.tensor, t.tensor.dim() >= 2});
  }
  if (trainable.empty()) throw ConfigError("--train " + s.train + ": selects no parameter of this model");
  run->train_vision = m.visual && (train::trained_by("visual.blocks.0", s.train) || train::trained_by("visual.merger.x", s.train));
  m.lm->train();
  if (m.visual) m.visual->train(run->train_vision);
  return std::make_unique<dist::ZeroAdamW>(trainable, *p.comm, s.zero_stage, s.adam, int64_t(s.bucket_mb * (1 << 20) / 4));
}

// A checksum of the frozen weights (names and bytes, in checkpoint order): on resume the trainable
// weights come from the checkpoint but the frozen ones from --init, which must be the same init.
uint32_t frozen_fingerprint(const SftRun& run) {
  uint32_t crc = 0;
  for (const NamedTensor& t : run.params) {
    if (t.tensor.requires_grad()) continue;
    const at::Tensor host = t.tensor.detach().to(at::kCPU).contiguous();
    crc = io::crc32_update(crc, t.name.data(), t.name.size());
    crc = io::crc32_update(crc, host.data_ptr(), uint64_t(host.nbytes()));
  }
  return crc;
}

// Where training stands: the next step and the tokens seen so far.
struct Cursor {
  int64_t step = 0, tokens_seen = 0;
};

// Metrics after the checkpoint belong to the run that was lost: drop their lines (rank 0).
void drop_metrics_after(const std::string& output, int64_t step) {
  const std::string metrics = io::join_path(output, "metrics.jsonl");
  if (!io::path_exists(metrics)) return;
  std::ifstream in(metrics);
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t(0)) <= step) kept += line + "\n";
  }
  io::write_file_atomic(metrics, kept);
}

// Continues from --output's latest checkpoint when there is one (same plan, or an error saying
// which setting differs), else starts at step 0. Collective.
Cursor resume(const Settings& s, const nlohmann::json& identity, const SftRun& run, uint32_t frozen_crc,
              dist::ZeroAdamW& opt) {
  const TrainingPlan& plan = run.plan;
  Cursor c;
  if (!io::path_exists(io::join_path(s.output, "latest"))) {
    io::make_dirs(s.output);
    MPI_Barrier(MPI_COMM_WORLD);
    return c;
  }
  if (s.no_resume) throw ConfigError("--no-resume: " + s.output + " already holds a checkpoint");
  io::CheckpointReader r(s.output, MPI_COMM_WORLD);
  const auto it = r.attrs().extra.find("sft_plan");
  if (it == r.attrs().extra.end()) throw Error(r.path() + ": not an ovr_sft checkpoint (no sft_plan attribute)");
  const nlohmann::json saved = nlohmann::json::parse(it->second);
  for (const auto& [key, value] : identity.items())
    if (saved.value(key, nlohmann::json()) != value)
      throw Error(r.path() + ": written for " + key + " = " + saved.value(key, nlohmann::json()).dump() + ", this run has " +
                  value.dump() + "; resuming would train on other rows (use the same settings, or a new --output)");
  // The model of --init must be the checkpoint's: same tensors and shapes, and the same frozen
  // weights (checked before anything is loaded, naming the first difference).
  for (const NamedTensor& t : run.params) {
    const std::string ds = "/model/" + t.name;
    if (!r.has(ds)) throw Error(r.path() + ": holds no " + t.name + " of --init " + s.init + " (a checkpoint of another model)");
    const std::vector<int64_t> have = r.info(ds).shape, want(t.tensor.sizes().begin(), t.tensor.sizes().end());
    if (have != want)
      throw Error(r.path() + ": " + t.name + " is " + io::shape_string(have) + " there but " + io::shape_string(want) +
                  " in --init " + s.init + " (a checkpoint of another model)");
  }
  const auto saved_crc = r.attrs().extra.find("sft_frozen_crc32");
  if (saved_crc != r.attrs().extra.end() && saved_crc->second != std::to_string(frozen_crc))
    throw Error(r.path() + ": --init " + s.init + " is not the init this run started from (its frozen weights differ; "
                "resuming would pair them with weights trained beside another model)");
  c.step = read_state_scalar(r, "/state/step");
  c.tokens_seen = read_state_scalar(r, "/state/tokens_seen");
  int64_t epoch = 0, row = 0;
  if (c.step < plan.total_steps) plan.locate(c.step, s.global_batch, &epoch, &row);
  if (c.step > plan.total_steps || read_state_scalar(r, "/state/epoch") != epoch || read_state_scalar(r, "/state/epoch_row") != row)
    throw Error(r.path() + ": its data cursor does not match this run's plan");
  opt.load(r, read_state_scalar(r, "/state/optimizer_steps"));
  log::info("resumed from %s at step %lld (epoch %lld, row %lld) on %d rank(s)", r.path().c_str(), (long long)c.step,
            (long long)epoch, (long long)row, world_size());
  if (world_rank() == 0) drop_metrics_after(s.output, c.step);
  MPI_Barrier(MPI_COMM_WORLD);
  return c;
}

// One optimizer step over the global batch of `step`: this rank's micro-batches, the loss summed
// over tokens and divided by the global batch's targets (every token weighs the same).
struct StepResult {
  int64_t epoch = 0, targets = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens = 0;
};

StepResult train_step(const Settings& s, const Placement& p, SftRun& run, dist::ZeroAdamW& opt, const LrSchedule& sched,
                      int64_t step) {
  const int rank = world_rank();
  const int64_t rows_per_rank = s.global_batch / world_size(), accumulation = rows_per_rank / s.micro_batch;
  StepResult r;
  int64_t row0;
  run.plan.locate(step, s.global_batch, &r.epoch, &row0);
  const std::vector<PackedRow>& rows = run.plan.epochs[size_t(r.epoch)];
  for (int64_t k = row0; k < row0 + s.global_batch; ++k) r.targets += count_targets(run.data, rows[size_t(k)]);

  double sums[2] = {0, 0};  // loss sum, tokens (this rank)
  for (int64_t k = 0; k < accumulation; ++k) {
    std::vector<const PackedRow*> micro;
    for (int64_t j = 0; j < s.micro_batch; ++j)
      micro.push_back(&rows[size_t(row0 + rank * rows_per_rank + k * s.micro_batch + j)]);
    const SftBatch batch = make_sft_batch(run.data, micro, run.m.image_token_id,
                                          run.m.visual ? run.m.visual->config.spatial_merge_size : 2);
    if (p.cuda) set_cuda_autocast(true);
    at::Tensor loss_sum = sft_loss_sum(run.m, batch, run.processor ? &*run.processor : nullptr, run.train_vision);
    if (p.cuda) set_cuda_autocast(false);
    (loss_sum / double(r.targets)).backward();
    opt.reduce_micro_batch();
    sums[0] += loss_sum.item<double>();
    sums[1] += double(batch.tokens);
  }
  r.lr = sched.at(step);
  r.grad_norm = opt.step(r.lr, s.max_grad_norm);
  OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  r.tokens = sums[1];
  r.loss = sums[0] / double(r.targets);
  if (!std::isfinite(r.loss)) throw Error("step " + std::to_string(step + 1) + ": the loss is " + std::to_string(r.loss) + " (diverged)");
  return r;
}

// step_N.h5 with the data cursor and the optimizer state; older files beyond --keep-last removed.
void save_checkpoint(const Settings& s, const std::string& run_config, const nlohmann::json& identity, uint32_t frozen_crc,
                     SftRun& run, dist::ZeroAdamW& opt, const Cursor& at) {
  io::CheckpointAttrs attrs;
  attrs.step = at.step;
  attrs.role = "policy";
  attrs.model_config = run.model_config;
  attrs.run_config = run_config;
  attrs.extra["sft_plan"] = identity.dump();
  attrs.extra["sft_frozen_crc32"] = std::to_string(frozen_crc);
  int64_t epoch = int64_t(run.plan.epochs.size()), row = 0;
  if (at.step < run.plan.total_steps) run.plan.locate(at.step, s.global_batch, &epoch, &row);
  const std::string path = io::join_path(s.output, step_file_name(at.step));
  const io::DType dtype = s.save_dtype == "BF16" ? io::DType::BF16 : io::DType::F32;
  write_training_checkpoint(path, attrs, run.params, dtype, opt,
                            {{"/state/step", at.step}, {"/state/epoch", epoch}, {"/state/epoch_row", row},
                             {"/state/tokens_seen", at.tokens_seen}, {"/state/optimizer_steps", opt.steps_taken()},
                             {"/state/seed", int64_t(s.seed)}});
  log::info("checkpoint %s", path.c_str());
  if (s.keep_last > 0 && world_rank() == 0) remove_old_step_files(s.output, s.keep_last, at.step);
}

}  // namespace

int run_sft(const Config& cfg) {
  const Settings s = read_settings(cfg);
  install_stop_signals();
  const io::RunLock lock(s.output, MPI_COMM_WORLD);  // one run per output directory
  const Placement placement = place_on_devices(s);
  SftRun run;
  load_model_and_data(s, &run);
  const std::unique_ptr<dist::ZeroAdamW> opt = make_optimizer(s, placement, &run);
  LrSchedule sched{s.schedule, s.lr, s.warmup_steps, run.plan.total_steps, s.min_lr_ratio};
  if (s.warmup_steps == 0) sched.warmup_steps = int64_t(s.warmup_ratio * double(run.plan.total_steps));
  const nlohmann::json identity = plan_identity(s, run.data);
  const uint32_t frozen_crc = frozen_fingerprint(run);
  Cursor cursor = resume(s, identity, run, frozen_crc, *opt);

  log::info("training %lld parameters (%s) of %zu tensors on %d rank(s), %s, ZeRO-%d over %s; optimizer state %.1f MiB per rank",
            (long long)opt->numel(), s.train.c_str(), run.params.size(), world_size(), placement.device.str().c_str(),
            s.zero_stage, placement.comm->backend(), opt->state_bytes_per_rank() / 1048576.0);
  const int rank = world_rank();
  std::FILE* metrics = rank == 0 ? std::fopen(io::join_path(s.output, "metrics.jsonl").c_str(), "a") : nullptr;
  if (rank == 0 && !metrics) throw Error(s.output + "/metrics.jsonl: cannot open for writing");
  const int64_t first_step = cursor.step, total = run.plan.total_steps;
  const double t_start = monotonic_seconds();
  int status = kExitOk;
  for (; cursor.step < total; ++cursor.step) {
    const int64_t step = cursor.step;
    const double t0 = monotonic_seconds();
    const StepResult r = train_step(s, placement, run, *opt, sched, step);
    cursor.tokens_seen += int64_t(r.tokens);

    const double t1 = monotonic_seconds();
    const double dt = t1 - t0;
    const double run_time = t1 - t_start;
    const int64_t done = step + 1 - first_step;
    if (rank == 0) {
      nlohmann::json j = {{"step", step + 1}, {"epoch", r.epoch}, {"loss", r.loss}, {"lr", r.lr}, {"grad_norm", r.grad_norm},
                          {"tokens", int64_t(r.tokens)}, {"targets", r.targets}, {"tokens_per_s", r.tokens / dt},
                          {"step_s", dt}, {"elapsed_s", log::elapsed_seconds()}};
      std::fprintf(metrics, "%s\n", j.dump().c_str());
      std::fflush(metrics);
      if ((step + 1) % s.log_every == 0 || step + 1 == total)
        log::info("step %lld/%lld | epoch %lld | loss %.4f | lr %.3g | grad norm %.3f | %.0f tok/s | ETA %s",
                  (long long)(step + 1), (long long)total, (long long)r.epoch + 1, r.loss, r.lr, r.grad_norm,
                  r.tokens / dt, duration(run_time / double(done) * double(total - step - 1)).c_str());
    }

    const bool stopping = any_rank_stopping(MPI_COMM_WORLD) || (s.stop_after > 0 && done >= s.stop_after);
    const bool last = step + 1 == total;
    if (stopping || last || (s.save_every > 0 && (step + 1) % s.save_every == 0))
      save_checkpoint(s, cfg.to_json().dump(), identity, frozen_crc, run, *opt, {step + 1, cursor.tokens_seen});
    if (stopping && !last) {
      log::info("stopping after step %lld (%s): checkpoint written, exit status %d asks to be requeued",
                (long long)(step + 1), stop_signal_received() ? strsignal(stop_signal_number()) : "--stop-after-steps",
                int(kExitRequeue));
      status = kExitRequeue;
      break;
    }
  }
  if (metrics) std::fclose(metrics);
  if (status == kExitOk) log::info("done: %lld steps, %lld tokens", (long long)total, (long long)cursor.tokens_seen);
  return status;
}

}  // namespace ovr::train
