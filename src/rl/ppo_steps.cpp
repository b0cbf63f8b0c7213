#include "rl/ppo_steps.h"

#include <torch/torch.h>

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

void all_sum(double* v, int n) { OVR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD)); }

}  // namespace

PpoBatch build_ppo_batch(const Rollouts& ro, const image::ImageProcessor& processor, int minibatches, int64_t seq_len,
                         uint64_t seed, int rank, int ranks) {
  PpoBatch b;
  std::map<std::string, std::array<int64_t, 3>> grids;  // an image's grid, computed once
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
    b.data.docs.push_back(std::move(d));
    b.response_tokens.push_back(int64_t(s.tokens.size()));
    b.total_tokens += int64_t(s.tokens.size());
  }
  if (b.total_tokens == 0) throw Error("the rollouts hold no response tokens");

  const int64_t n = int64_t(ro.samples.size());
  const std::vector<int64_t> order = epoch_order(n, seed, ro.iteration);
  for (int mb = 0; mb < minibatches; ++mb) {
    const std::vector<int64_t> members(order.begin() + n * mb / minibatches, order.begin() + n * (mb + 1) / minibatches);
    const auto rows = train::pack_rows(members, b.data.docs, seq_len, true);
    const int64_t r = int64_t(rows.size());
    b.rows.emplace_back(rows.begin() + r * rank / ranks, rows.begin() + r * (rank + 1) / ranks);
    int64_t tokens = 0;
    for (int64_t s : members) tokens += b.response_tokens[size_t(s)];
    b.minibatch_tokens.push_back(tokens);
    b.micro_batches.push_back((r + ranks - 1) / ranks);
  }
  return b;
}

at::Tensor row_values(PpoModels& m, const PpoBatch& b, const train::PackedRow& row) {
  return values_of(m, row_batch(m, b, row));
}

ScoreStats score_rollouts(PpoModels& m, const PpoBatch& b, const Rollouts& ro, std::vector<SampleState>* st) {
  st->assign(ro.samples.size(), SampleState{});
  double mismatch[3] = {0, 0, 0};  // sum |logp - behaviour|, sum (behaviour - logp), tokens
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
        mismatch[0] += (s.old_logp - b_lp).abs().sum().item<double>();
        mismatch[1] += (b_lp - s.old_logp).sum().item<double>();
        mismatch[2] += double(behaviour.size());
      }
    }
  all_sum(mismatch, 3);
  return {mismatch[0] / std::max(1.0, mismatch[2]), mismatch[1] / std::max(1.0, mismatch[2])};
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
  double mom[7] = {0, 0, 0, 0, 0, 0, 0};  // adv sum, sumsq, count; returns sum, sumsq; (R - V) sum, sumsq
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
          mom[3] += s.ret.sum().item<double>(), mom[4] += s.ret.pow(2).sum().item<double>();
          const at::Tensor err = s.ret - s.old_value;
          mom[5] += err.sum().item<double>(), mom[6] += err.pow(2).sum().item<double>();
        } else {
          s.advantage = torch::full({n}, per_sample_advantage[size_t(d)], at::kFloat);
        }
        int64_t count = 0;
        add_moments(s.advantage, &mom[0], &mom[1], &count);
        mom[2] += double(count);
      }
  all_sum(mom, 7);
  AdvantageStats out;
  const MeanStd adv = moments(mom[0], mom[1], int64_t(mom[2]));
  out.mean = adv.mean, out.std = adv.std;
  if (o.with_critic()) {
    const MeanStd rets = moments(mom[3], mom[4], int64_t(mom[2]));
    const MeanStd errs = moments(mom[5], mom[6], int64_t(mom[2]));
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

PolicyStats update_policy(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st) {
  double f[6] = {0, 0, 0, 0, 0, 0};  // loss sum, clipped, approx kl, tokens, kl sum, entropy sum
  PolicyStats out;
  const train::LrSchedule lr{"constant", o.policy_lr, o.warmup_steps, 1, 0.0};
  m.policy->lm->train();
  for (int pass = 0; pass < o.policy_steps; ++pass)
    for (size_t mb = 0; mb < b.rows.size(); ++mb) {
      const auto& rows = b.rows[mb];
      for (int64_t k = 0; k < b.micro_batches[mb]; ++k) {
        if (k < int64_t(rows.size())) {  // ranks with fewer rows still join every reduction
          const RowPolicyLoss l = row_policy_loss(m, o, b, rows[size_t(k)], st, b.minibatch_tokens[mb]);
          l.loss.backward();
          f[0] += l.loss_sum, f[1] += l.clipped, f[2] += l.approx_kl, f[3] += l.tokens, f[4] += l.kl, f[5] += l.entropy;
        }
        opt.reduce_micro_batch();
      }
      out.grad_norm = opt.step(lr.at(opt.steps_taken()), o.max_grad_norm);
    }
  all_sum(f, 6);
  const double tokens = std::max(1.0, f[3]);
  out.loss = f[0] / tokens, out.clip_fraction = f[1] / tokens, out.approx_kl = f[2] / tokens;
  out.kl = f[4] / tokens, out.entropy = f[5] / tokens;
  return out;
}

CriticStats update_critic(PpoModels& m, dist::ZeroAdamW& opt, const PpoOptions& o, const PpoBatch& b,
                          const std::vector<SampleState>& st) {
  double f[3] = {0, 0, 0};  // loss sum, clipped, tokens
  CriticStats out;
  const train::LrSchedule lr{"constant", o.critic_lr, o.warmup_steps, 1, 0.0};
  m.critic->lm->train();
  for (int pass = 0; pass < o.critic_steps; ++pass)
    for (size_t mb = 0; mb < b.rows.size(); ++mb) {
      const auto& rows = b.rows[mb];
      for (int64_t k = 0; k < b.micro_batches[mb]; ++k) {
        if (k < int64_t(rows.size())) {
          const RowValueLoss l = row_value_loss(m, o, b, rows[size_t(k)], st, b.minibatch_tokens[mb]);
          l.loss.backward();
          f[0] += l.loss_sum, f[1] += l.clipped, f[2] += l.tokens;
        }
        opt.reduce_micro_batch();
      }
      out.grad_norm = opt.step(lr.at(opt.steps_taken()), o.max_grad_norm);
    }
  all_sum(f, 3);
  out.loss = f[0] / std::max(1.0, f[2]), out.clip_fraction = f[1] / std::max(1.0, f[2]);
  return out;
}

}  // namespace ovr::rl
