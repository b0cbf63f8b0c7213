// SFT training figures, each with its baseline measured in the same run:
//   step  MODEL THREADS SEQ ROWS STEPS   training tokens/s of one rank (forward, backward, ZeRO
//                                        AdamW) and model-FLOPs utilisation against the fp32
//                                        matmul peak of the same LibTorch and threads;
//   comm  MODEL STAGE STEPS              (under mpiexec -n N) optimizer state per rank, and the
//                                        gradient reduce-scatter of the ZeRO optimizer against
//                                        one bare MPI_Reduce_scatter_block of the same bytes.
// Prints one JSON line per measurement.
#include <ATen/Parallel.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "dist/zero_optimizer.h"
#include "model/qwen2_5_vl.h"
#include "model/weights.h"
#include "train/sft_batch.h"

using namespace ovr;
using Clock = std::chrono::steady_clock;
static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Best of several large fp32 matmuls: what this LibTorch reaches on this machine.
static double matmul_peak_flops() {
  const int64_t n = 2048;
  at::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  torch::mm(a, b);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t = Clock::now();
    at::Tensor c = torch::mm(a, b);
    best = std::max(best, 2.0 * n * n * n / since(t));
  }
  return best;
}

static std::vector<dist::ZeroParam> params_of(model::Qwen2_5_VL& m) {
  std::vector<dist::ZeroParam> out;
  for (const auto& p : m.lm->named_parameters()) out.push_back({p.key(), p.value(), p.value().dim() >= 2});
  return out;
}

static int bench_step(const std::string& dir, int threads, int64_t seq, int64_t rows, int steps) {
  at::set_num_threads(threads);
  const double peak = matmul_peak_flops();
  model::Qwen2_5_VL m;
  m.lm = model::load_qwen2_lm(dir);
  m.lm->train();
  const auto& c = m.lm->config;
  // Documents that fill the rows exactly; every token but the first is a target.
  train::SftDataset data;
  std::mt19937 rng(1);
  std::vector<train::PackedRow> packed;
  for (int64_t r = 0; r < rows; ++r) {
    train::SftDocument d;
    for (int64_t t = 0; t < seq; ++t) d.ids.push_back(int32_t(rng() % uint32_t(c.vocab_size))), d.loss_mask.push_back(1);
    data.docs.push_back(d);
    packed.push_back({{r}, seq});
  }
  std::vector<const train::PackedRow*> batch_rows;
  for (const auto& p : packed) batch_rows.push_back(&p);
  const train::SftBatch batch = train::make_sft_batch(data, batch_rows, -1, 2);
  auto comm = dist::make_mpi_communicator(MPI_COMM_SELF);
  dist::ZeroAdamW opt(params_of(m), *comm, 1, {0.9, 0.95, 1e-8, 0.0});
  double best = 1e30, total = 0;
  for (int s = 0; s <= steps; ++s) {  // step 0 warms up
    const auto t = Clock::now();
    (train::sft_loss_sum(m, batch, nullptr, false) / double(batch.targets)).backward();
    opt.step(1e-5, 1.0);
    const double dt = since(t);
    if (s > 0) best = std::min(best, dt), total += dt;
  }
  // Model FLOPs per token (PaLM's appendix B): 6 x non-embedding parameters (forward and backward)
  // + the vocabulary projection, + attention's 12 x layers x hidden x seq_len.
  int64_t params = 0;
  for (const auto& p : m.lm->parameters()) params += p.numel();
  const double embed = double(c.vocab_size) * double(c.hidden_size);
  const double per_token = 6.0 * (double(params) - (c.tie_word_embeddings ? 0.0 : embed)) +
                           12.0 * double(c.num_hidden_layers) * double(c.hidden_size) * double(seq);
  const double tok_s = double(rows * seq) * steps / total;
  nlohmann::json j = {{"bench", "sft_step"}, {"impl", "ovr"}, {"threads", threads}, {"seq_len", seq}, {"rows", rows},
                      {"params", params}, {"tokens_per_s", tok_s}, {"best_step_s", best},
                      {"model_flops_per_s", per_token * tok_s}, {"matmul_peak_flops_per_s", peak},
                      {"mfu", per_token * tok_s / peak}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

static int bench_comm(const std::string& dir, int stage, int steps) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  at::set_num_threads(1);
  model::Qwen2_5_VL m;
  m.lm = model::load_qwen2_lm(dir);
  auto comm = dist::make_mpi_communicator(MPI_COMM_WORLD);
  dist::ZeroAdamW opt(params_of(m), *comm, stage, {0.9, 0.95, 1e-8, 0.0});
  // Gradients as a backward pass would leave them (stage 1: views of the flat buffer).
  auto fill = [&] {
    torch::NoGradGuard g;
    for (auto& p : m.lm->parameters()) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().normal_();
    }
  };
  fill();
  opt.reduce_micro_batch();
  opt.step(1e-5, 0);  // warm-up
  const double r0 = opt.reduce_seconds();
  for (int s = 0; s < steps; ++s) {
    fill();
    MPI_Barrier(MPI_COMM_WORLD);
    opt.reduce_micro_batch();
    opt.step(1e-5, 0);
  }
  const double ours = (opt.reduce_seconds() - r0) / steps;
  // The bare collective: the same number of bytes (all buckets, padded) in one call.
  const int64_t per_rank = opt.shard_numel();
  std::vector<float> send(static_cast<size_t>(per_rank * size), 1.0f), recv(static_cast<size_t>(per_rank));
  MPI_Reduce_scatter_block(send.data(), recv.data(), int(per_rank), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double bare = 0;
  for (int s = 0; s < steps; ++s) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t = Clock::now();
    MPI_Reduce_scatter_block(send.data(), recv.data(), int(per_rank), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    bare += since(t);
  }
  bare /= steps;
  double figures[2] = {ours, bare};
  MPI_Allreduce(MPI_IN_PLACE, figures, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    const double bytes = double(per_rank) * size * 4;
    nlohmann::json j = {{"bench", "zero_comm"}, {"ranks", size}, {"stage", stage}, {"params", opt.numel()},
                        {"optimizer_state_bytes_per_rank", opt.state_bytes_per_rank()},
                        {"master_and_moments_bytes_per_rank", 12 * opt.shard_numel()},
                        {"grad_bytes", bytes}, {"ovr_reduce_s", figures[0]}, {"bare_mpi_reduce_scatter_s", figures[1]},
                        {"ovr_vs_bare_bandwidth", figures[1] / figures[0]}};
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 2;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "step" && argc == 7) rc = bench_step(argv[2], std::atoi(argv[3]), std::atol(argv[4]), std::atol(argv[5]), std::atoi(argv[6]));
  else if (mode == "comm" && argc == 5) rc = bench_comm(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  else std::fprintf(stderr, "usage: sft_bench step MODEL THREADS SEQ ROWS STEPS | comm MODEL STAGE STEPS\n");
  MPI_Finalize();
  return rc;
}
