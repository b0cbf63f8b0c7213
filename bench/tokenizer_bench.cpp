// Tokenizer encode throughput on MATH500 problems and solutions, one thread, against Hugging Face
// `tokenizers` (Rust, through its Python binding) measured in the same run. Goal: >= 1x HF.
//
//   tokenizer_bench [TOKENIZER_JSON] [MATH500_JSONL] [--repeats N] [--hf PYTHON [--hf-script PATH]]
//
// Defaults are the committed fixtures (run from the repository root). With --hf, PYTHON (a
// python3 that can `import tokenizers`) runs bench/tokenizer_bench_hf.py (or PATH) on the same texts; both
// figures and their ratio are printed, and the token counts must agree.
// Both sides encode each text separately (no special tokens added), after one warm-up pass,
// so both have their word caches filled; the figure is the best of the repeats.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "text/tokenizer.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ovr::Error(path + ": cannot open");
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    texts.push_back(row.at("problem").get<std::string>());
    texts.push_back(row.at("solution").get<std::string>());
  }
  return texts;
}

// Runs the HF script; returns its MB/s (and its token count in *tokens), or -1 on failure.
double run_hf(const std::string& python, const std::string& script, const std::string& tokenizer,
              const std::string& data, int repeats, long* tokens) {
  const std::string cmd = "RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false '" + python + "' '" + script + "' '" +
                          tokenizer + "' '" + data + "' " + std::to_string(repeats);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char line[512];
  double mbs = -1;
  while (fgets(line, sizeof line, p)) {
    std::fputs(line, stdout);
    double m;
    long t;
    if (std::sscanf(line, "hf_tokenizers %*s MB/s=%lf tokens=%ld", &m, &t) == 2) {
      mbs = m;
      *tokens = t;
    }
  }
  return pclose(p) == 0 ? mbs : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path = "tests/fixtures/qwen2_5_vl_tokenizer/tokenizer.json";
  std::string data_path = "tests/fixtures/benchmarks/math500/test.jsonl";
  std::string python, script = "bench/tokenizer_bench_hf.py";
  int repeats = 5;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (a == "--hf" && i + 1 < argc) python = argv[++i];
    else if (a == "--hf-script" && i + 1 < argc) script = argv[++i];
    else if (a == "--help" || a == "-h") {
      std::printf("usage: tokenizer_bench [TOKENIZER_JSON] [MATH500_JSONL] [--repeats N] "
                  "[--hf PYTHON [--hf-script PATH]]\n");
      return 0;
    } else if (positional == 0) tokenizer_path = a, ++positional;
    else if (positional == 1) data_path = a, ++positional;
    else {
      std::fprintf(stderr, "tokenizer_bench: unexpected argument '%s'\n", a.c_str());
      return 2;
    }
  }
  try {
    const double t_load = now();
    const ovr::text::Tokenizer tok(tokenizer_path);
    const double load_s = now() - t_load;
    const auto texts = read_texts(data_path);
    size_t bytes = 0;
    for (const auto& t : texts) bytes += t.size();

    long tokens = 0;
    const double t_cold = now();
    for (const auto& t : texts) tokens += long(tok.encode(t).size());  // warm-up: fills the word cache
    const double cold = bytes / (now() - t_cold) / 1e6;
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const double t0 = now();
      long n = 0;
      for (const auto& t : texts) n += long(tok.encode(t).size());
      best = std::min(best, now() - t0);
      if (n != tokens) throw ovr::Error("token count changed between repeats");
    }
    const double ours = bytes / best / 1e6;
    std::printf("texts=%zu bytes=%zu (MATH500 problems + solutions), tokenizer load %.2f s\n", texts.size(), bytes,
                load_s);
    std::printf("ovr_tokenizer  encode MB/s=%.2f tokens=%ld (best of %d, one thread; first pass, empty cache: %.2f MB/s)\n",
                ours, tokens, repeats, cold);
    std::fflush(stdout);
    if (!python.empty()) {
      long hf_tokens = -1;
      const double hf = run_hf(python, script, tokenizer_path, data_path, repeats, &hf_tokens);
      if (hf <= 0) throw ovr::Error("the Hugging Face side failed (is `tokenizers` installed for " + python + "?)");
      std::printf("ratio ovr/hf = %.2fx   token counts %s\n", ours / hf, hf_tokens == tokens ? "agree" : "DIFFER");
      if (hf_tokens != tokens) return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
