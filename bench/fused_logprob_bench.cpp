// Fused linear log-prob (kernels/fused_logprob) against the plain LibTorch way, CPU, one run:
//   fused_logprob_bench T V H [--baseline PATH] [--threads N] [--chunks CT CV] [--one-call] [--entropy]
// Each side runs in its own child process (the baseline is PATH, bench/fused_logprob_torch_baseline.cpp,
// run with the same arguments), so each peak RSS (getrusage of the child) is its own. Both sides
// compute the target log-probs of T tokens (and the entropy with --entropy) from hidden [T, H] and
// weight [V, H], then the gradients of sum_t g_t logprob_t w.r.t. hidden and weight.
// Prints one JSON line per side. Each side measures its own "extra_mib": peak RSS minus the RSS once
// its inputs exist, minus the fp32 gradients (which both sides end up holding): the memory the method
// itself needs. --one-call runs fused_logprob_forward_backward (the SFT-loss case: gradients known
// up front), with the vocabulary chunk = V unless --chunks says otherwise.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/fused_logprob.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// CPU seconds of this process: with 1 thread, the time it would take on an idle core (the dev VM is shared).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

struct Options {
  int64_t T = 512, V = 151936, H = 3584, cT = 1024, cV = 8192;
  int threads = 1;
  bool entropy = false, one_call = false, chunks_given = false;
  std::string baseline;
};

// A cheap deterministic fill (a hash of the index), uniform in [-a, a]: the GEMMs do not care
// about the distribution, and 2 GB of mt19937 normals would take longer than the kernel.
void fill(std::vector<float>& v, float a, uint64_t seed) {
  for (size_t i = 0; i < v.size(); ++i) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    v[i] = a * (static_cast<float>(z >> 40) / static_cast<float>(1ull << 23) - 1.0f);
  }
}

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int run_fused(const Options& o) {
  using namespace ovr::kernels;
#ifdef _OPENMP
  omp_set_num_threads(o.threads);  // libgomp read OMP_NUM_THREADS before main; OpenBLAS-openmp follows this
#endif
  const int64_t T = o.T, V = o.V, H = o.H;
  std::vector<float> x(T * H), w(V * H), g(T), lp(T), lse(T), ent(o.entropy ? T : 0), ge(o.entropy ? T : 0);
  // Not value-initialised: their pages are first touched by the kernel, as torch allocates .grad in backward.
  std::unique_ptr<float[]> gx(new float[T * H]), gw(new float[V * H]);
  std::vector<int64_t> y(T);
  fill(x, 1.0f, 1);
  fill(w, 0.05f, 2);
  fill(g, 1.0f, 3);
  fill(ge, 1.0f, 4);
  for (int64_t t = 0; t < T; ++t) y[t] = (t * 7919) % V;
  const long rss_inputs = max_rss_kib();  // before the gradients are touched, as on the torch side

  LogprobForwardArgs f;
  f.T = T, f.V = V, f.H = H, f.chunks = {o.cT, o.cV};
  f.hidden = x.data(), f.weight = w.data(), f.targets = y.data();
  f.logprob = lp.data(), f.lse = lse.data(), f.entropy = o.entropy ? ent.data() : nullptr;
  LogprobGrads gr;
  gr.grad_logprob = g.data(), gr.grad_entropy = o.entropy ? ge.data() : nullptr;
  gr.grad_hidden = gx.get(), gr.grad_weight = gw.get();
  double fwd = 0, bwd = 0;
  const double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  if (o.one_call) {
    fused_logprob_forward_backward(Device::CPU, f, gr);
    fwd = since(t0);
  } else {
    fused_logprob_forward(Device::CPU, f);
    fwd = since(t0);
    t0 = Clock::now();
    fused_logprob_backward(Device::CPU, backward_args(f, gr));
    bwd = since(t0);
  }
  const double cpu = cpu_seconds() - cpu0;
  const double grads_mib = 4.0 * (T * H + V * H) / (1 << 20);
  const double extra = (max_rss_kib() - rss_inputs) / 1024.0 - grads_mib;
  double checksum = 0;
  for (int64_t t = 0; t < T; ++t) checksum += lp[t];
  std::printf(
      "{\"side\":\"fused%s\",\"T\":%lld,\"V\":%lld,\"H\":%lld,\"chunks\":[%lld,%lld],\"threads\":%d,"
      "\"entropy\":%s,\"forward_s\":%.3f,\"backward_s\":%.3f,\"total_s\":%.3f,\"cpu_s\":%.3f,\"extra_mib\":%.1f,"
      "\"workspace_mib\":%.1f,\"sum_logprob\":%.6g}\n",
      o.one_call ? "_one_call" : "", (long long)T, (long long)V, (long long)H, (long long)o.cT, (long long)o.cV,
      o.threads, o.entropy ? "true" : "false", fwd, bwd, fwd + bwd, cpu, extra,
      4.0 * std::min(o.cT, T) * std::min(o.cV, V) / (1 << 20), checksum);
  std::fflush(stdout);
  return 0;
}

// Runs `child` in a forked process (or execs argv when child is null); returns its peak RSS in KiB.
long in_child(const Options& o, const std::vector<std::string>& argv, int (*child)(const Options&)) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    if (child) std::_Exit(child(o));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::perror(("exec " + argv[0]).c_str());
    std::_Exit(127);
  }
  int status = 0;
  rusage u{};
  if (wait4(pid, &status, 0, &u) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "fused_logprob_bench: child %s failed (status %d)\n", child ? "fused" : argv[0].c_str(),
                 status);
    std::exit(1);
  }
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--baseline" && i + 1 < argc) o.baseline = argv[++i];
    else if (a == "--threads" && i + 1 < argc) o.threads = std::atoi(argv[++i]);
    else if (a == "--chunks" && i + 2 < argc) {
      o.cT = std::atoll(argv[++i]), o.cV = std::atoll(argv[++i]);
      o.chunks_given = true;
    } else if (a == "--one-call") o.one_call = true;
    else if (a == "--entropy") o.entropy = true;
    else if (a == "--help" || a == "-h" || a[0] == '-') {
      std::printf(
          "usage: fused_logprob_bench [T V H] [--baseline PATH] [--threads N] [--chunks CT CV] [--one-call] [--entropy]\n"
          "  T V H        tokens, vocabulary, hidden (default 512 151936 3584)\n"
          "  --baseline   the LibTorch baseline executable, run with the same sizes (default: fused only)\n"
          "  --threads    OpenMP/BLAS threads of both sides (default 1)\n"
          "  --chunks     tile of the fused kernel, tokens x vocabulary (default 1024 8192; --one-call: 512 V)\n"
          "  --one-call   forward and backward in one call (gradients known up front: the SFT loss)\n"
          "  --entropy    also compute the entropy and back-propagate through it\n");
      return a[0] == '-' && a != "--help" && a != "-h" ? 2 : 0;
    } else pos.push_back(a);
  }
  if (pos.size() == 3) o.T = std::atoll(pos[0].c_str()), o.V = std::atoll(pos[1].c_str()), o.H = std::atoll(pos[2].c_str());
  else if (!pos.empty()) {
    std::fprintf(stderr, "fused_logprob_bench: give T V H or nothing\n");
    return 2;
  }
  setenv("OMP_NUM_THREADS", std::to_string(o.threads).c_str(), 1);  // for the baseline's exec

  if (o.one_call && !o.chunks_given) o.cT = 512, o.cV = o.V;

  if (!o.baseline.empty()) {
    const long kib = in_child(o, {o.baseline, std::to_string(o.T), std::to_string(o.V), std::to_string(o.H),
                                  std::to_string(o.threads), o.entropy ? "1" : "0"},
                              nullptr);
    std::printf("{\"side\":\"torch\",\"peak_rss_mib\":%.1f}\n", kib / 1024.0);
  }
  const long kib = in_child(o, {}, run_fused);
  std::printf("{\"side\":\"fused\",\"peak_rss_mib\":%.1f}\n", kib / 1024.0);
  std::printf("{\"sizes\":true,\"inputs_and_grads_mib\":%.1f,\"logits_T_by_V_mib\":%.1f}\n",
              2.0 * 4.0 * (o.T * o.H + o.V * o.H) / (1 << 20), 4.0 * o.T * o.V / (1 << 20));
  return 0;
}
