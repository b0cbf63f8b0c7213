// The packed PPO trainer (rl/ppo_steps.h: samples packed into rows, split back per sample, values
// aligned, losses normalised by the minibatch's tokens on all ranks) against a plain computation:
// each sample alone through the networks' logits and hidden states, GAE by its recursion in double,
// the losses written out token by token. Run on 1 and 2 ranks (ctest): log-probs, values,
// advantages, returns, losses and gradients must agree whatever the packing and the rank count.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/seeded_order.h"
#include "model/qwen2.h"
#include "model/qwen2_5_vl.h"
#include "rl/ppo_steps.h"
#include "rl/rollout_store.h"
#include "test_util.h"

using namespace ovr;

namespace {

int my_rank() { int r; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int ranks() { int n; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

constexpr int64_t kVocab = 61, kHidden = 32;

// The same random network on every rank, from `seed`.
model::Qwen2_5_VL tiny_model(uint64_t seed) {
  model::Qwen2Config c;
  c.model_type = "qwen2";
  c.vocab_size = kVocab, c.hidden_size = kHidden, c.intermediate_size = 48, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8;
  torch::manual_seed(seed);
  model::Qwen2_5_VL m;
  m.lm = model::Qwen2ForCausalLM(c);
  torch::NoGradGuard g;
  for (auto& p : m.lm->parameters()) p.normal_(0, 0.2);
  return m;
}

// 4 prompts of 2..11 tokens, 3 samples each with responses of 1..14 tokens (a ragged batch),
// rewards 0/1 with one all-equal group.
rl::Rollouts ragged_rollouts() {
  std::mt19937 rng(3);
  rl::Rollouts ro;
  ro.iteration = 2;
  const int prompt_len[4] = {2, 11, 5, 8};
  const int response_len[4][3] = {{1, 14, 6}, {9, 3, 12}, {4, 4, 7}, {13, 2, 10}};
  const float reward[4][3] = {{1, 0, 1}, {0, 0, 0}, {1, 1, 0}, {0, 1, 0}};
  for (int g = 0; g < 4; ++g) {
    rl::RolloutGroup group;
    group.dataset_index = g;
    for (int t = 0; t < prompt_len[g]; ++t) group.prompt_tokens.push_back(int32_t(rng() % kVocab));
    ro.groups.push_back(group);
    for (int k = 0; k < 3; ++k) {
      rl::RolloutSample s;
      s.group = g, s.sample_index = k, s.reward = reward[g][k];
      for (int t = 0; t < response_len[g][k]; ++t) s.tokens.push_back(int32_t(rng() % kVocab)), s.logprobs.push_back(-4.f);
      s.length = int64_t(s.tokens.size());
      ro.samples.push_back(s);
    }
  }
  return ro;
}

// The plain computation of one sample: prompt + response through the network alone.
struct Plain {
  at::Tensor logp, entropy, hidden;  // at the response tokens (float)
};
Plain plain_forward(model::Qwen2_5_VL& m, const rl::Rollouts& ro, size_t i) {
  const auto& s = ro.samples[i];
  const auto& g = ro.groups[size_t(s.group)];
  std::vector<int64_t> ids(g.prompt_tokens.begin(), g.prompt_tokens.end());
  ids.insert(ids.end(), s.tokens.begin(), s.tokens.end());
  const auto in = m.inputs(ids, at::Tensor(), at::Tensor());
  const int64_t len = int64_t(ids.size()), p = int64_t(g.prompt_tokens.size()), n = int64_t(s.tokens.size());
  const at::Tensor mask = model::causal_segment_mask(torch::zeros({1, len}, at::kLong), in.embeds.scalar_type());
  const at::Tensor hidden = m.lm->hidden_states(in.embeds.unsqueeze(0), in.positions.unsqueeze(1), mask)[0];
  const at::Tensor h = hidden.narrow(0, p - 1, n);  // the state before each response token
  const at::Tensor logsm = torch::log_softmax(m.lm->logits(h.unsqueeze(0))[0].to(at::kDouble), -1);
  const at::Tensor targets = torch::tensor(std::vector<int64_t>(s.tokens.begin(), s.tokens.end()));
  return {logsm.gather(1, targets.unsqueeze(1)).squeeze(1).to(at::kFloat),
          (-(logsm.exp() * logsm).sum(-1)).to(at::kFloat), h};
}

// Double-precision GAE by its backward recursion, reward on the last token.
std::pair<std::vector<double>, std::vector<double>> plain_gae(const at::Tensor& values, double reward, double gamma,
                                                              double lambda) {
  const int64_t n = values.numel();
  const at::Tensor v64 = values.to(at::kDouble).contiguous();
  const double* v = v64.data_ptr<double>();
  std::vector<double> adv(static_cast<size_t>(n)), ret(static_cast<size_t>(n));
  double next_adv = 0;
  for (int64_t t = n - 1; t >= 0; --t) {
    const double next_v = t + 1 < n ? v[t + 1] : 0.0, r = t == n - 1 ? reward : 0.0;
    const double delta = r + gamma * next_v - v[t];
    next_adv = delta + gamma * lambda * next_adv;
    adv[size_t(t)] = next_adv, ret[size_t(t)] = next_adv + v[t];
  }
  return {adv, ret};
}

double max_rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  return ((x - y).abs() / (y.abs() + 1e-3)).max().item<double>();
}

void all_sum(at::Tensor& t) {  // float tensors, in place
  at::Tensor c = t.contiguous();
  MPI_Allreduce(MPI_IN_PLACE, c.data_ptr<float>(), int(c.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  t.copy_(c);
}

}  // namespace

TEST(PackedPpo, equals_a_plain_per_sample_computation_on_a_ragged_batch) {
  const rl::Rollouts ro = ragged_rollouts();
  const size_t n = ro.samples.size();
  rl::PpoOptions o;
  o.gamma = 0.95, o.lambda = 0.9;  // not the telescoping 1, 1: every value matters
  o.kl_coef = 0.05, o.entropy_coef = 0.01, o.value_clip = 0.05;
  o.clip = {0.2, 0.28, 3.0};
  o.minibatches = 2, o.seq_len = 40, o.seed = 9;  // several samples per row, rows of ragged fill

  model::Qwen2_5_VL policy = tiny_model(7), critic = tiny_model(11), reference = tiny_model(13);
  torch::manual_seed(17);
  at::Tensor head = (torch::randn({1, kHidden}) * 0.3).requires_grad_(true);
  const image::ImageProcessor processor{image::ImageProcessorOptions{}};
  rl::PpoModels m;
  m.policy = &policy, m.critic = &critic, m.reference = &reference, m.value_head = head, m.processor = &processor;

  // ---- the packed trainer's steps ----
  const rl::PpoBatch b = rl::build_ppo_batch(ro, processor, o.minibatches, o.seq_len, o.seed, my_rank(), ranks());
  size_t packed_together = 0;
  for (const auto& rows : b.rows)
    for (const auto& row : rows) packed_together = std::max(packed_together, row.docs.size());
  EXPECT_GE(packed_together, 2u) << "the test must pack several samples into a row";
  std::vector<rl::SampleState> st;
  rl::score_rollouts(m, b, ro, &st);
  rl::estimate_advantages(o, b, ro, &st);

  // ---- the plain computation, every sample on every rank ----
  std::vector<Plain> pol(n), ref(n), cri(n);
  std::vector<at::Tensor> values(n), adv(n), ret(n);
  double sum = 0, sumsq = 0, count = 0;
  {
    torch::NoGradGuard g;
    for (size_t i = 0; i < n; ++i) {
      pol[i] = plain_forward(policy, ro, i), ref[i] = plain_forward(reference, ro, i), cri[i] = plain_forward(critic, ro, i);
      values[i] = at::linear(cri[i].hidden, head).squeeze(-1);
      auto [a, r] = plain_gae(values[i], ro.samples[i].reward, o.gamma, o.lambda);
      adv[i] = torch::tensor(a, at::kDouble), ret[i] = torch::tensor(r, at::kDouble);
      for (double x : a) sum += x, sumsq += x * x, count += 1;
    }
  }
  const double mean = sum / count, sd = std::sqrt(std::max(0.0, sumsq / count - mean * mean));
  for (auto& a : adv) a = ((a - mean) / (sd + 1e-8)).to(at::kFloat);

  // This rank's samples: the packed trainer's per-sample tensors equal the plain ones.
  std::vector<int> mine(n, 0);
  for (const auto& rows : b.rows)
    for (const auto& row : rows)
      for (int64_t d : row.docs) mine[size_t(d)] = 1;
  for (size_t i = 0; i < n; ++i) {
    if (!mine[i]) continue;
    ASSERT_EQ(st[i].old_logp.numel(), int64_t(ro.samples[i].tokens.size())) << "sample " << i;
    EXPECT_LT(max_rel_diff(st[i].old_logp, pol[i].logp), 1e-4) << "log-probs of sample " << i;
    EXPECT_LT(max_rel_diff(st[i].ref_logp, ref[i].logp), 1e-4) << "reference log-probs of sample " << i;
    EXPECT_LT(max_rel_diff(st[i].old_value, values[i]), 1e-4) << "values of sample " << i;
    EXPECT_LT(max_rel_diff(st[i].advantage, adv[i]), 1e-4) << "advantages of sample " << i;
    EXPECT_LT(max_rel_diff(st[i].ret, ret[i]), 1e-4) << "returns of sample " << i;
  }
  int samples_here = 0;
  for (int x : mine) samples_here += x;
  int samples_all = samples_here;
  MPI_Allreduce(MPI_IN_PLACE, &samples_all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(samples_all, int(n)) << "every sample on exactly one rank";

  // Old log-probs and values moved by a fixed offset per token (the same on both sides), so that the
  // ratio and value clips engage on some tokens and not on others.
  std::vector<at::Tensor> old_logp(n), old_value(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t len = pol[i].logp.numel();
    const at::Tensor shift = torch::linspace(-0.4, 0.4, len) * (i % 2 ? 1 : -1);
    old_logp[i] = pol[i].logp + shift, old_value[i] = values[i] + 0.5 * shift;
    if (mine[i]) st[i].old_logp = st[i].old_logp + shift, st[i].old_value = st[i].old_value + 0.5 * shift;
  }

  // ---- minibatch 0: losses and gradients, packed on this rank and summed over ranks ----
  const std::vector<int64_t> order = epoch_order(int64_t(n), o.seed, ro.iteration);
  const std::vector<int64_t> members(order.begin(), order.begin() + int64_t(n) / o.minibatches);
  int64_t tokens = 0;
  for (int64_t i : members) tokens += int64_t(ro.samples[size_t(i)].tokens.size());
  ASSERT_EQ(b.minibatch_tokens[0], tokens);

  policy.lm->zero_grad(), critic.lm->zero_grad();
  double packed_policy = 0, packed_value = 0;
  for (const auto& row : b.rows[0]) {
    const auto pl = rl::row_policy_loss(m, o, b, row, st, b.minibatch_tokens[0]);
    pl.loss.backward();
    packed_policy += pl.loss.item<double>();
    const auto vl = rl::row_value_loss(m, o, b, row, st, b.minibatch_tokens[0]);
    vl.loss.backward();
    packed_value += vl.loss.item<double>();
  }
  MPI_Allreduce(MPI_IN_PLACE, &packed_policy, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &packed_value, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  auto grads_of = [](model::Qwen2_5_VL& net, std::vector<at::Tensor> extra) {
    std::vector<at::Tensor> g;
    for (auto& p : net.lm->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    for (auto& e : extra) g.push_back(e.grad().defined() ? e.grad().clone() : torch::zeros_like(e));
    for (auto& t : g) all_sum(t);
    return g;
  };
  const auto packed_policy_grads = grads_of(policy, {});
  const auto packed_critic_grads = grads_of(critic, {head});

  // The plain losses, token by token from their definitions (rl/ppo.h).
  policy.lm->zero_grad(), critic.lm->zero_grad();
  head.mutable_grad() = at::Tensor();
  at::Tensor plain_policy = torch::zeros({}, at::kDouble), plain_value = torch::zeros({}, at::kDouble);
  for (int64_t i : members) {
    const Plain p = plain_forward(policy, ro, size_t(i));
    const at::Tensor lp = p.logp.to(at::kDouble), old = old_logp[size_t(i)].to(at::kDouble);
    const at::Tensor a = adv[size_t(i)].to(at::kDouble);
    const at::Tensor ratio = (lp - old).clamp(-20, 20).exp();
    at::Tensor loss = torch::max(-a * ratio, -a * ratio.clamp(1 - o.clip.clip_low, 1 + o.clip.clip_high));
    loss = torch::where(a < 0, torch::min(loss, -o.clip.dual_clip * a), loss);
    const at::Tensor d = (ref[size_t(i)].logp.to(at::kDouble) - lp).clamp(-20, 20);
    plain_policy = plain_policy + loss.sum() + o.kl_coef * (d.exp() - d - 1).sum() -
                   o.entropy_coef * p.entropy.to(at::kDouble).sum();
    const Plain c = plain_forward(critic, ro, size_t(i));
    const at::Tensor v = at::linear(c.hidden, head).squeeze(-1).to(at::kDouble);
    const at::Tensor ov = old_value[size_t(i)].to(at::kDouble), r = ret[size_t(i)].to(at::kDouble);
    const at::Tensor clipped = ov + (v - ov).clamp(-o.value_clip, o.value_clip);
    plain_value = plain_value + 0.5 * torch::max((v - r).pow(2), (clipped - r).pow(2)).sum();
  }
  plain_policy = plain_policy / double(tokens), plain_value = plain_value / double(tokens);
  plain_policy.backward(), plain_value.backward();
  EXPECT_NEAR(packed_policy, plain_policy.item<double>(), 1e-5 * std::max(1.0, std::abs(packed_policy)));
  EXPECT_NEAR(packed_value, plain_value.item<double>(), 1e-5 * std::max(1.0, std::abs(packed_value)));

  auto expect_same_grads = [](const std::vector<at::Tensor>& packed, const std::vector<at::Tensor>& plain,
                              const char* who) {
    ASSERT_EQ(packed.size(), plain.size());
    double norm = 0;
    for (const auto& g : plain) norm += g.to(at::kDouble).pow(2).sum().item<double>();
    ASSERT_GT(norm, 0) << who << ": the plain gradient is zero (the test would check nothing)";
    for (size_t k = 0; k < packed.size(); ++k) {
      const double diff = (packed[k].to(at::kDouble) - plain[k].to(at::kDouble)).abs().max().item<double>();
      EXPECT_LT(diff, 1e-5 * std::sqrt(norm)) << who << " parameter " << k;
    }
  };
  std::vector<at::Tensor> plain_policy_grads, plain_critic_grads;
  for (auto& p : policy.lm->parameters()) plain_policy_grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
  for (auto& p : critic.lm->parameters()) plain_critic_grads.push_back(p.grad().defined() ? p.grad() : torch::zeros_like(p));
  plain_critic_grads.push_back(head.grad());
  expect_same_grads(packed_policy_grads, plain_policy_grads, "policy");
  expect_same_grads(packed_critic_grads, plain_critic_grads, "critic");
}

// ovr_ppo reads only its own samples' responses (read_rollout_index, plan_ppo_batch,
// read_rollout_responses, fill_ppo_documents): each rank gets exactly the rows and documents the
// whole-file read gives it, so the update is the same, while reading 1/N of the responses.
TEST(ShardedRolloutRead, gives_each_rank_the_batch_of_the_whole_file_read) {
  const std::string dir = test::shared_temp_dir("sharded_rollouts");
  const std::string path = dir + "/iter_000002.h5";
  rl::write_rollouts(path, MPI_COMM_WORLD, my_rank() == 0 ? ragged_rollouts() : rl::Rollouts{});
  const image::ImageProcessor processor{image::ImageProcessorOptions{}};

  const rl::Rollouts whole = rl::read_rollouts(path);
  const rl::PpoBatch a = rl::build_ppo_batch(whole, processor, 2, 40, 9, my_rank(), ranks());
  rl::Rollouts index = rl::read_rollout_index(path);
  for (const auto& s : index.samples) EXPECT_TRUE(s.tokens.empty() && s.logprobs.empty());
  rl::PpoBatch b = rl::plan_ppo_batch(index, 2, 40, 9, my_rank(), ranks());
  const uint64_t bytes = rl::read_rollout_responses(path, MPI_COMM_WORLD, rl::ppo_samples(b), &index);
  rl::fill_ppo_documents(b, index, processor);

  ASSERT_EQ(a.rows.size(), b.rows.size());
  for (size_t mb = 0; mb < a.rows.size(); ++mb) {
    ASSERT_EQ(a.rows[mb].size(), b.rows[mb].size());
    for (size_t r = 0; r < a.rows[mb].size(); ++r) {
      EXPECT_EQ(a.rows[mb][r].docs, b.rows[mb][r].docs);
      EXPECT_EQ(a.rows[mb][r].tokens, b.rows[mb][r].tokens);
    }
  }
  EXPECT_EQ(a.minibatch_tokens, b.minibatch_tokens);
  EXPECT_EQ(a.micro_batches, b.micro_batches);
  EXPECT_EQ(a.response_tokens, b.response_tokens);
  const std::vector<int64_t> mine = rl::ppo_samples(b);
  uint64_t want_bytes = 0;
  for (size_t i = 0; i < whole.samples.size(); ++i) {
    const bool own = std::binary_search(mine.begin(), mine.end(), int64_t(i));
    if (own) {
      EXPECT_EQ(a.data.docs[i].ids, b.data.docs[i].ids) << "sample " << i;
      EXPECT_EQ(a.data.docs[i].loss_mask, b.data.docs[i].loss_mask) << "sample " << i;
      EXPECT_EQ(index.samples[i].logprobs, whole.samples[i].logprobs) << "sample " << i;
      want_bytes += whole.samples[i].tokens.size() * 8;
    } else {
      EXPECT_TRUE(b.data.docs[i].ids.empty()) << "sample " << i << " is another rank's, yet was read";
    }
  }
  EXPECT_EQ(bytes, want_bytes);
  uint64_t all_bytes = 0, total = uint64_t(a.total_tokens) * 8;
  MPI_Allreduce(&bytes, &all_bytes, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(all_bytes, total) << "the ranks together read every response byte once";
}
