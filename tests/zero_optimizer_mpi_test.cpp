// ZeRO-1 and ZeRO-2 AdamW on the ranks of MPI_COMM_WORLD (run under mpiexec -n 1 and -n 2)
// against LibTorch's own single-process AdamW and gradient clipping on the whole global batch;
// and optimizer state saved by all ranks, read back by one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/seeded_order.h"
#include "dist/zero_optimizer.h"
#include "model/qwen2.h"
#include "test_util.h"
#include "train/sft_batch.h"

using namespace ovr;

namespace {

int my_rank() { int r; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int ranks() { int n; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

model::Qwen2Config tiny_config() {
  model::Qwen2Config c;
  c.model_type = "qwen2";
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  return c;
}

// The same random model on every rank (parameters from a fixed seed).
model::Qwen2_5_VL tiny_model() {
  torch::manual_seed(7);
  model::Qwen2_5_VL m;
  m.lm = model::Qwen2ForCausalLM(tiny_config());
  for (auto& p : m.lm->parameters()) {
    torch::NoGradGuard g;
    p.normal_(0, 0.1);
  }
  return m;
}

// A global batch of 8 packed rows of random documents, different per step.
train::SftDataset random_data(int64_t docs, uint64_t seed) {
  std::mt19937 rng{static_cast<uint32_t>(seed)};
  train::SftDataset d;
  for (int64_t i = 0; i < docs; ++i) {
    train::SftDocument doc;
    const int len = 4 + int(rng() % 9);
    for (int t = 0; t < len; ++t) {
      doc.ids.push_back(int32_t(rng() % 61));
      doc.loss_mask.push_back(t >= 2 && rng() % 4 != 0);
    }
    d.docs.push_back(doc);
  }
  return d;
}

struct Step {
  std::vector<train::PackedRow> rows;  // the global batch
  int64_t targets = 0;
};
std::vector<Step> make_steps(const train::SftDataset& data, int n_steps) {
  const auto rows = train::pack_rows(epoch_order(int64_t(data.docs.size()), 3, 0), data.docs, 24, true);
  std::vector<Step> steps(static_cast<size_t>(n_steps));
  for (int s = 0; s < n_steps; ++s)
    for (int r = 0; r < 8; ++r) {
      steps[size_t(s)].rows.push_back(rows[size_t(s * 8 + r)]);
      steps[size_t(s)].targets += train::count_targets(data, rows[size_t(s * 8 + r)]);
    }
  return steps;
}

std::vector<dist::ZeroParam> zero_params(model::Qwen2_5_VL& m) {
  std::vector<dist::ZeroParam> out;
  for (const auto& p : m.lm->named_parameters()) out.push_back({p.key(), p.value(), p.value().dim() >= 2});
  return out;
}

double max_relative_difference(model::Qwen2_5_VL& a, model::Qwen2_5_VL& b) {
  double worst = 0;
  auto pa = a.lm->parameters(), pb = b.lm->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const double diff = (pa[i] - pb[i]).abs().max().item<double>();
    const double scale = pb[i].abs().max().item<double>();
    worst = std::max(worst, diff / std::max(scale, 1e-12));
  }
  return worst;
}

// eps well above the noise-level gradients of parameters the loss barely touches: Adam turns a
// gradient of 1e-10 into a full lr-sized step whose sign is rounding noise, so with eps = 1e-8 an
// ulp of difference between the fused AdamW kernel and LibTorch's ops grows into 1e-4 after a few
// steps. The arithmetic itself is checked to the ulp in tests/adamw_sampling_gae_kernel_test.cpp.
const dist::AdamWOptions kAdam{0.9, 0.95, 1e-4, 0.1};
constexpr double kLr = 1e-2, kClip = 0.5;

// The reference: one process, the whole global batch, torch::optim::AdamW with the same parameter
// groups (decay on matrices only) and torch::nn::utils::clip_grad_norm_. Adam divides by the
// root of the second moment, so a last-bit difference in a near-zero gradient moves a parameter by
// up to lr: the reference therefore adds the rows' gradients in the grouping the ranks use (each
// rank's micro-batches in order, then over ranks; ZeRO-2 reduces after every micro-batch), which
// makes the gradients equal bit for bit. What remains to differ is only where the sharded
// optimizer could go wrong: buckets, slices, padding, communication, clipping and the update.
std::vector<at::Tensor> row_gradients(model::Qwen2_5_VL& m, const train::SftDataset& data, const train::PackedRow& row,
                                      int64_t targets) {
  for (auto& p : m.lm->parameters()) p.mutable_grad().reset();
  const auto batch = train::make_sft_batch(data, {&row}, -1, 2);
  (train::sft_loss_sum(m, batch, nullptr, false) / double(targets)).backward();
  std::vector<at::Tensor> g;
  for (auto& p : m.lm->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return g;
}

void add(std::vector<at::Tensor>& acc, const std::vector<at::Tensor>& g) {
  if (acc.empty()) acc = g;
  else for (size_t i = 0; i < acc.size(); ++i) acc[i] = acc[i] + g[i];
}

void reference_training(model::Qwen2_5_VL& m, const train::SftDataset& data, const std::vector<Step>& steps, int stage,
                        int n_ranks) {
  std::vector<at::Tensor> decay, no_decay;
  for (auto& p : m.lm->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto with = torch::optim::AdamWOptions(kLr).betas({kAdam.beta1, kAdam.beta2}).eps(kAdam.eps).weight_decay(kAdam.weight_decay);
  auto without = torch::optim::AdamWOptions(kLr).betas({kAdam.beta1, kAdam.beta2}).eps(kAdam.eps).weight_decay(0);
  torch::optim::AdamW opt({torch::optim::OptimizerParamGroup(decay, std::make_unique<torch::optim::AdamWOptions>(with)),
                           torch::optim::OptimizerParamGroup(no_decay, std::make_unique<torch::optim::AdamWOptions>(without))});
  const int per_rank = 8 / n_ranks;
  for (const Step& s : steps) {
    std::vector<std::vector<at::Tensor>> g;  // [row]
    for (const auto& row : s.rows) g.push_back(row_gradients(m, data, row, s.targets));
    std::vector<at::Tensor> total;
    if (stage == 1) {  // each rank accumulates its rows; then the sum over ranks
      for (int r = 0; r < n_ranks; ++r) {
        std::vector<at::Tensor> mine;
        for (int k = 0; k < per_rank; ++k) add(mine, g[size_t(r * per_rank + k)]);
        add(total, mine);
      }
    } else {  // each micro-batch is summed over ranks, and added to the slice
      for (int k = 0; k < per_rank; ++k) {
        std::vector<at::Tensor> over_ranks;
        for (int r = 0; r < n_ranks; ++r) add(over_ranks, g[size_t(r * per_rank + k)]);
        add(total, over_ranks);
      }
    }
    auto params = m.lm->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = total[i];
    torch::nn::utils::clip_grad_norm_(params, kClip);
    opt.step();
  }
}

// The same under ZeRO: rank r takes rows [r*8/N, (r+1)*8/N) in micro-batches of `micro` rows.
void zero_training(model::Qwen2_5_VL& m, dist::ZeroAdamW& opt, const train::SftDataset& data,
                   const std::vector<Step>& steps, int micro) {
  const int per_rank = 8 / ranks();
  for (const Step& s : steps) {
    for (int k = 0; k < per_rank / micro; ++k) {
      std::vector<const train::PackedRow*> rows;
      for (int j = 0; j < micro; ++j) rows.push_back(&s.rows[size_t(my_rank() * per_rank + k * micro + j)]);
      const auto batch = train::make_sft_batch(data, rows, -1, 2);
      (train::sft_loss_sum(m, batch, nullptr, false) / double(s.targets)).backward();
      opt.reduce_micro_batch();
    }
    opt.step(kLr, kClip);
  }
}

class ZeroStage : public ::testing::TestWithParam<int> {};

TEST_P(ZeroStage, EqualsSingleProcessTorchAdamWAfterSeveralSteps) {
  const auto data = random_data(200, 11);
  const auto steps = make_steps(data, 5);
  model::Qwen2_5_VL reference = tiny_model(), sharded = tiny_model();
  reference_training(reference, data, steps, GetParam(), ranks());

  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  // A small bucket size: several buckets, parameters of uneven sizes, padded slices.
  dist::ZeroAdamW opt(zero_params(sharded), *comm, GetParam(), kAdam, /*bucket_elems=*/1000);
  zero_training(sharded, opt, data, steps, /*micro=*/1);

  const double rel = max_relative_difference(sharded, reference);
  EXPECT_LE(rel, 1e-6) << "ZeRO-" << GetParam() << " on " << ranks() << " rank(s)";
  // And it did train: the parameters moved well beyond that tolerance.
  model::Qwen2_5_VL untouched = tiny_model();
  EXPECT_GT(max_relative_difference(untouched, reference), 1e-2);
  // Optimizer memory: each rank holds about 1/N of master weights and moments.
  EXPECT_LE(opt.shard_numel(), opt.numel() / ranks() + 64 * 8);
}

INSTANTIATE_TEST_SUITE_P(Stages, ZeroStage, ::testing::Values(1, 2));

TEST(ZeroCheckpoint, StateWrittenByAllRanksIsReadBackByOneRankIdentically) {
  const auto data = random_data(200, 5);
  const auto steps = make_steps(data, 3);
  model::Qwen2_5_VL m = tiny_model();
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  dist::ZeroAdamW opt(zero_params(m), *comm, 2, kAdam, 700);
  zero_training(m, opt, data, steps, 1);

  const std::string dir = test::shared_temp_dir("zero_ckpt"), path = dir + "/optim.h5";
  {
    io::CheckpointAttrs attrs;
    attrs.extra["optim_params"] = opt.layout_json();
    io::CheckpointWriter w(path, MPI_COMM_WORLD, attrs);
    opt.define(w);
    opt.save(w);
    w.commit(false);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (my_rank() == 0) {
    // One rank, another bucket size: the flat state maps onto any layout.
    model::Qwen2_5_VL fresh = tiny_model();
    auto self = dist::make_mpi_communicator(MPI_COMM_SELF);
    dist::ZeroAdamW one(zero_params(fresh), *self, 1, kAdam, 5000);
    io::CheckpointReader r(path, MPI_COMM_SELF);
    one.load(r, opt.steps_taken());
    EXPECT_EQ(max_relative_difference(fresh, m), 0.0) << "parameters from the master weights";
    // Saved again by the single rank, the state is byte for byte what all ranks saved.
    std::vector<float> a(size_t(one.numel())), b(size_t(one.numel()));
    io::CheckpointReader r2(path, MPI_COMM_SELF);
    for (const char* name : {"/optim/master", "/optim/exp_avg", "/optim/exp_avg_sq"}) {
      r2.read(name, a.data());
      ASSERT_TRUE(std::any_of(a.begin(), a.end(), [](float v) { return v != 0; })) << name;
    }
    io::CheckpointAttrs attrs;
    attrs.extra["optim_params"] = one.layout_json();
    const std::string again = dir + "/again.h5";
    {
      io::CheckpointWriter w(again, MPI_COMM_SELF, attrs);
      one.define(w);
      one.save(w);
      w.commit(false);
    }
    io::CheckpointReader r3(again, MPI_COMM_SELF);
    for (const char* name : {"/optim/master", "/optim/exp_avg", "/optim/exp_avg_sq"}) {
      r2.read(name, a.data());
      r3.read(name, b.data());
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << name << " differs after 2 -> 1 ranks";
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(ZeroCheckpoint, RefusesStateOfOtherParameters) {
  if (my_rank() != 0) return;
  model::Qwen2_5_VL m = tiny_model();
  auto self = dist::make_mpi_communicator(MPI_COMM_SELF);
  dist::ZeroAdamW opt(zero_params(m), *self, 1, kAdam);
  const std::string path = test::temp_dir("zero_other_np" + std::to_string(ranks()) + "_r" + std::to_string(my_rank())) + "/o.h5";
  {
    io::CheckpointAttrs attrs;
    attrs.extra["optim_params"] = "[[\"other\", 3]]";
    io::CheckpointWriter w(path, MPI_COMM_SELF, attrs);
    opt.define(w);
    opt.save(w);
    w.commit(false);
  }
  io::CheckpointReader r(path, MPI_COMM_SELF);
  try {
    opt.load(r, 1);
    FAIL() << "loaded optimizer state of other parameters";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other trainable parameters"), std::string::npos) << e.what();
  }
}

}  // namespace
