#include "rl/ppo_steps.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <map>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "common/seeded_order.h"
#include "rl/advantage.h"
#include "rl/ppo.h"
#include "train/lr_schedule.h"
#include "train/sft_batch.h"

namespace ovr::rl {

namespace {

train::SftBatch row_batch(const PpoModels& m, const PpoBatch& b, const train::PackedRow& row) {
  return train::make_sft_batch(b.data, {&row}, m.policy->image_token_id, 2);
}

// Splits a row's per-target tensor into its documents' pieces (each holds its response tokens).
std::vector<at::Tensor> per_sample(const PpoBatch& b, const train::PackedRow& row, const at::Tensor& t) {
  std::vector<at::Tensor> out;
  int64_t at = 0;
  for (int64_t d : row.docs) {
    const int64_t n = b.response_tokens[size_t(d)];
    out.push_back(t.narrow(0, at, n));
    at += n;
  }
  return out;
}

// The row's documents' tensors of one kind, back to back (the row's target order).
at::Tensor row_cat(const train::PackedRow& row, const std::vector<SampleState>& st, at::Tensor SampleState::*field) {
  std::vector<at::Tensor> parts;
  for (int64_t d : row.docs) parts.push_back(st[size_t(d)].*field);
  return torch::cat(parts);
}

at::Tensor row_logprobs(model::Qwen2_5_VL& net, const PpoModels& m, const train::SftBatch& batch, bool with_entropy,
                        at::Tensor* entropy = nullptr) {
  const ops::TokenLogprobs scored =
      train::target_logprobs(net, train::hidden_at_targets(net, batch, m.processor, false), with_entropy);
  if (entropy) *entropy = scored.entropy;
  return scored.logprob;
}

at::Tensor values_of(PpoModels& m, const train::SftBatch& batch) {
  const auto states = train::hidden_at_targets(*m.critic, batch, m.processor, false);
  return at::linear(states.hidden, m.value_head).squeeze(-1);
}

}  // namespace

PpoBatch plan_ppo_batch(const Rollouts& ro, int minibatches, int64_t seq_len, uint64_t seed, int rank, int ranks) {
  PpoBatch b;
  std::vector<int64_t> lengths;  // prompt + response: a packed document
  for (const RolloutSample& s : ro.samples) {
    lengths.push_back(int64_t(ro.groups[size_t(s.group)].prompt_tokens.size()) + s.length);
    b.response_tokens.push_back(s.length);
    b.total_tokens += s.length;
  }
  if (b.total_tokens == 0) throw Error("the rollouts hold no response tokens");
  b.data.docs.resize(ro.samples.size());

  const int64_t n = int64_t(ro.samples.size());
  const std::vector<int64_t> order = epoch_order(n, seed, ro.iteration);
  for (int mb = 0; mb < minibatches; ++mb) {
    const std::vector<int64_t> members(order.begin() + n * mb / minibatches, order.begin() + n * (mb + 1) / minibatches);
    const auto rows = train::pack_rows(members, lengths, seq_len, true);
    const int64_t r = int64_t(rows.size());
    b.rows.emplace_back(rows.begin() + r * rank / ranks, rows.begin() + r * (rank + 1) / ranks);
    int64_t tokens = 0;
    for (int64_t s : members) tokens += b.response_tokens[size_t(s)];
    b.minibatch_tokens.push_back(tokens);
    b.micro_batches.push_back((r + ranks - 1) / ranks);
  }
  return b;
}

std::vector<int64_t> ppo_samples(const PpoBatch& b) {
  std::vector<int64_t> out;
  for (const auto& rows : b.rows)
    for (const auto& row : rows) out.insert(out.end(), row.docs.begin(), row.docs.end());
  std::sort(out.begin(), out.end());
  return out;
}

void fill_ppo_documents(PpoBatch& b, const Rollouts& ro, const image::ImageProcessor& processor) {
  std::map<std::string, std::array<int64_t, 3>> grids;  // an image's grid, computed once
  for (int64_t i : ppo_samples(b)) {
    const RolloutSample& s = ro.samples[size_t(i)];
    const RolloutGroup& g = ro.groups[size_t(s.group)];
    if (int64_t(s.tokens.size()) != s.length) throw Error("fill_ppo_documents: sample " + std::to_string(i) + " was not read");
    train::SftDocument& d = b.data.docs[size_t(i)];
    d.ids = g.prompt_tokens;
    d.ids.insert(d.ids.end(), s.tokens.begin(), s.tokens.end());
    d.loss_mask.assign(g.prompt_tokens.size(), 0);
    d.loss_mask.insert(d.loss_mask.end(), s.tokens.size(), 1);
    for (const std::string& path : g.images) {
      if (!grids.count(path)) grids[path] = processor.process_file(path).grid_thw;
      d.images.push_back({path, grids[path]});
    }
  }
}

PpoBatch build_ppo_batch(const Rollouts& ro, const image::ImageProcessor& processor, int minibatches, int64_t seq_len,
                         uint64_t seed, int rank, int ranks) {
  PpoBatch b = plan_ppo_batch(ro, minibatches, seq_len, seed, rank, ranks);
  fill_ppo_documents(b, ro, processor);
  return b;
}

at::Tensor row_values(PpoModels& m, const PpoBatch& b, const train::PackedRow& row) {
  return values_of(m, row_batch(m, b, row));
}

ScoreStats score_rollouts(PpoModels& m, const PpoBatch& b, const Rollouts& ro, std::vector<SampleState>* st) {
  st->assign(ro.samples.size(), SampleState{});
  double mismatch_abs = 0, mismatch = 0, tokens = 0;  // sums of |logp - behaviour| and behaviour - logp
  torch::NoGradGuard no_grad;
  m.policy->lm->eval();
  if (m.critic) m.critic->lm->eval();
  for (const auto& rows : b.rows)
    for (const auto& row : rows) {
      const train::SftBatch batch = row_batch(m, b, row);
      const auto lp = per_sample(b, row, row_logprobs(*m.policy, m, batch, false));
      std::vector<at::Tensor> v, ref;
      if (m.critic) v = per_sample(b, row, values_of(m, batch));
      if (m.reference) ref = per_sample(b, row, row_logprobs(*m.reference, m, batch, false));
      for (size_t k = 0; k < row.docs.size(); ++k) {
        SampleState& s = (*st)[size_t(row.docs[k])];
        s.old_logp = lp[k].clone();
        if (m.critic) s.old_value = v[k].clone();
        if (m.reference) s.ref_logp = ref[k].clone();
        const auto& behaviour = ro.samples[size_t(row.docs[k])].logprobs;
        const at::Tensor b_lp = torch::tensor(behaviour, at::kFloat);
        mismatch_abs += (s.old_logp - b_lp).abs().sum().item<double>();
        mismatch += (b_lp - s.old_logp).sum().item<double>();
        tokens += double(behaviour.size());
      }
    }
  sum_over_ranks({&mismatch_abs, &mismatch, &tokens});
  return {mismatch_abs / std::max(1.0, tokens), mismatch / std::max(1.0, tokens)};
}

AdvantageStats estimate_advantages(const PpoOptions& o, const PpoBatch& b, const Rollouts& ro,
                                   std::vector<SampleState>* st) {
  std::vector<double> per_sample_advantage;  // grpo / rloo
  if (!o.with_critic()) {
    std::vector<double> rewards;
    std::vector<int64_t> groups;
    for (const RolloutSample& s : ro.samples) rewards.push_back(s.reward), groups.push_back(s.group);
    per_sample_advantage = group_advantages(o.advantage, rewards, groups, o.group_std_eps);
  }
  // Moments over all response tokens: advantages, returns and the critic's errors R - V.
  double adv_sum = 0, adv_sumsq = 0, count = 0, ret_sum = 0, ret_sumsq = 0, err_sum = 0, err_sumsq = 0;
  for (const auto& rows : b.rows)
    for (const auto& row : rows)
      for (int64_t d : row.docs) {
        SampleState& s = (*st)[size_t(d)];
        const int64_t n = b.response_tokens[size_t(d)];
        if (o.with_critic()) {
          at::Tensor rewards = torch::zeros({n}, at::kFloat);
          if (n > 0) rewards[n - 1] = ro.samples[size_t(d)].reward;
          const Advantages a = gae(rewards, s.old_value, {0, n}, o.gamma, o.lambda);
          s.advantage = a.advantages;
          s.ret = a.returns;
          ret_sum += s.ret.sum().item<double>(), ret_sumsq += s.ret.pow(2).sum().item<double>();
          const at::Tensor err = s.ret - s.old_value;
          err_sum += err.sum().item<double>(), err_sumsq += err.pow(2).sum().item<double>();
        } else {
          s.advantage = torch::full({n}, per_sample_advantage[size_t(d)], at::kFloat);
        }
        int64_t n_tokens = 0;
        add_moments(s.advantage, &adv_sum, &adv_sumsq, &n_tokens);
        count += double(n_tokens);
      }
  sum_over_ranks({&adv_sum, &adv_sumsq, &count, &ret_sum, &ret_sumsq, &err_sum, &err_sumsq});
  AdvantageStats out;
  const MeanStd adv = moments(adv_sum, adv_sumsq, int64_t(count));
  out.mean = adv.mean, out.std = adv.std;
  if (o.with_critic()) {
    const MeanStd rets = moments(ret_sum, ret_sumsq, int64_t(count));
    const MeanStd errs = moments(err_sum, err_sumsq, int64_t(count));
    out.explained_variance = rets.std > 0 ? 1.0 - (errs.std * errs.std) / (rets.std * rets.std) : 0.0;
    if (o.whiten_advantages)
      for (auto& s : *st)
        if (s.advantage.defined()) s.advantage = whiten(s.advantage, adv.mean, adv.std);
  }
  return out;
}

RowPolicyLoss row_policy_loss(PpoModels& m, const PpoOptions& o, const PpoBatch& b, const train::PackedRow& row,
                              const std::vector<SampleState>& st, int64_t minibatch_tokens) {
  RowPolicyLoss out;
  at::Tensor entropy;
  const at::Tensor logp = row_logprobs(*m.policy, m, row_batch(m, b, row), o.entropy_coef > 0, &entropy);
  const PolicyLoss pl = policy_loss(logp, row_cat(row, st, &SampleState::old_logp),
                                    row_cat(row, st, &SampleState::advantage), o.clip);
  at::Tensor loss = pl.loss_sum;
  if (o.kl_coef > 0) {
    const at::Tensor kl = kl_penalty_sum(logp, row_cat(row, st, &SampleState::ref_logp));
    loss = loss + o.kl_coef * kl;
    out.kl = kl.item<double>();
  }
  if (o.entropy_coef > 0) {
    const at::Tensor h = entropy.sum();
    loss = loss - o.entropy_coef * h;
    out.entropy = h.item<double>();
  }
  out.loss = loss / double(minibatch_tokens);
  out.loss_sum = pl.loss_sum.item<double>(), out.clipped = double(pl.clipped), out.approx_kl = pl.approx_kl_sum;
  out.tokens = double(logp.numel());
  return out;
}

RowValueLoss row_value_loss(PpoModels& m, const PpoOptions& o, const PpoBatch& b, const train::PackedRow& row,
                            const std::vector<SampleState>& st, int64_t minibatch_tokens) {
  const at::Tensor v = row_values(m, b, row);
  const ValueLoss vl = value_loss(v, row_cat(row, st, &SampleState::old_value), row_cat(row, st, &SampleState::ret),
                                  o.value_clip);
  return {vl.loss_sum / double(minibatch_tokens), vl.loss_sum.item<double>(), double(vl.clipped), double(v.numel())};
}

namespace {

// `passes` over the minibatches, one optimizer step each: the loss of each of this rank's rows
// (normalised by its minibatch's tokens) goes backward; a rank with fewer rows still joins every
// gradient reduction. Returns the last step's gradient norm.
template <class RowLoss>
double optimize(dist::ZeroAdamW& opt, const PpoBatch& b, int passes, const train::LrSchedule& lr, double max_grad_norm,
                RowLoss row_loss) {
  double grad_norm = 0;
  for (int pass = 0; pass < passes; ++pass)
    for (size_t mb = 0; mb < b.rows.size(); ++mb) {
      const auto& rows = b.rows[mb];
      for (int64_t k = 0; k < b.micro_batches[mb]; ++k) {
        if (k < int64_t(rows.size())) row_loss(rows[size_t(k)], b.minibatch_tokens[mb]).backward();
        opt.reduce_micro_batch();
      }
      grad_norm = opt.step(lr.at(opt.steps_taken()), max_grad_norm);
    }
  return grad_norm;
}

}  // namespace

PolicyStats update_policy(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st) {
  double loss = 0, clipped = 0, approx_kl = 0, tokens = 0, kl = 0, entropy = 0;  // sums over tokens
  m.policy->lm->train();
  PolicyStats out;
  out.grad_norm = optimize(opt, b, o.policy_steps, {"constant", o.policy_lr, o.warmup_steps, 1, 0.0}, o.max_grad_norm,
                           [&](const train::PackedRow& row, int64_t tokens) {
                             const RowPolicyLoss l = row_policy_loss(m, o, b, row, st, tokens);
                             loss += l.loss_sum, clipped += l.clipped, approx_kl += l.approx_kl, tokens += l.tokens;
                             kl += l.kl, entropy += l.entropy;
                             return l.loss;
                           });
  sum_over_ranks({&loss, &clipped, &approx_kl, &tokens, &kl, &entropy});
  tokens = std::max(1.0, tokens);
  out.loss = loss / tokens, out.clip_fraction = clipped / tokens, out.approx_kl = approx_kl / tokens;
  out.kl = kl / tokens, out.entropy = entropy / tokens;
  return out;
}

CriticStats update_critic(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st) {
  double loss = 0, clipped = 0, tokens = 0;  // sums over tokens
  m.critic->lm->train();
  CriticStats out;
  out.grad_norm = optimize(opt, b, o.critic_steps, {"constant", o.critic_lr, o.warmup_steps, 1, 0.0}, o.max_grad_norm,
                           [&](const train::PackedRow& row, int64_t tokens) {
                             const RowValueLoss l = row_value_loss(m, o, b, row, st, tokens);
                             loss += l.loss_sum, clipped += l.clipped, tokens += l.tokens;
                             return l.loss;
                           });
  sum_over_ranks({&loss, &clipped, &tokens});
  out.loss = loss / std::max(1.0, tokens), out.clip_fraction = clipped / std::max(1.0, tokens);
  return out;
}

}  // namespace ovr::rl
