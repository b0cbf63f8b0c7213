// The plain LibTorch way to the target log-probs, for bench/fused_logprob_bench.cpp (which runs this
// in its own process and reads its peak RSS):
//   fused_logprob_torch_baseline T V H THREADS ENTROPY(0|1)
// logits = hidden · weightᵀ [T, V], log_softmax, gather at the targets (and the entropy), then
// autograd for the gradients of sum_t g_t logprob_t (+ ge_t entropy_t) w.r.t. hidden and weight.
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>

using Clock = std::chrono::steady_clock;
static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// CPU seconds of this process: with 1 thread, the time it would take on an idle core (the dev VM is shared).
static double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: fused_logprob_torch_baseline T V H THREADS ENTROPY(0|1)\n");
    return 2;
  }
  const int64_t T = std::atoll(argv[1]), V = std::atoll(argv[2]), H = std::atoll(argv[3]);
  const int threads = std::atoi(argv[4]);
  const bool entropy = std::atoi(argv[5]) != 0;
  torch::set_num_threads(threads);
  torch::manual_seed(1);
  // The same inputs the fused side holds: fp32 hidden and weight, fp32 gradients of both.
  at::Tensor hidden = torch::rand({T, H}).sub_(0.5).mul_(2.0).requires_grad_();
  at::Tensor weight = torch::rand({V, H}).sub_(0.5).mul_(0.1).requires_grad_();
  const at::Tensor targets = torch::arange(T, torch::kLong).mul_(7919).remainder_(V);
  const at::Tensor g = torch::rand({T}).sub_(0.5).mul_(2.0);
  const at::Tensor ge = torch::rand({T}).sub_(0.5).mul_(2.0);
  const long rss_inputs = max_rss_kib();
  // No .grad yet: autograd then keeps the gradients matmul's backward produces (no extra copy to add).

  const double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  const at::Tensor logits = hidden.matmul(weight.t());
  const at::Tensor logp = torch::log_softmax(logits, -1);
  const at::Tensor lp = logp.gather(1, targets.unsqueeze(1)).squeeze(1);
  at::Tensor loss = (lp * g).sum();
  if (entropy) {
    const at::Tensor ent = -(logp.exp() * logp).sum(-1);
    loss = loss + (ent * ge).sum();
  }
  const double fwd = since(t0);
  const double checksum = lp.sum().item<double>();
  t0 = Clock::now();
  loss.backward();
  const double bwd = since(t0);
  const double cpu = cpu_seconds() - cpu0;
  // Extra memory: the peak beyond the inputs, less the gradients autograd leaves in .grad.
  const double extra = (max_rss_kib() - rss_inputs) / 1024.0 - 4.0 * (T * H + V * H) / (1 << 20);
  std::printf(
      "{\"side\":\"torch\",\"T\":%lld,\"V\":%lld,\"H\":%lld,\"threads\":%d,\"entropy\":%s,\"forward_s\":%.3f,"
      "\"backward_s\":%.3f,\"total_s\":%.3f,\"cpu_s\":%.3f,\"extra_mib\":%.1f,\"sum_logprob\":%.6g}\n",
      (long long)T, (long long)V, (long long)H, threads, entropy ? "true" : "false", fwd, bwd, fwd + bwd, cpu, extra, checksum);
  return 0;
}
