// Verdicts per second of the reward on the case tables (tests/fixtures/reward/cases.jsonl and
// kinds.jsonl), with Hugging Face math-verify on the same cases in the same run as the baseline,
// and the time of the slowest hostile answer against the 0.2 s bound.
//
//   reward_bench [--math-verify PYTHON] [--seconds S]
//
// PYTHON is an interpreter with math-verify installed (python3 -m venv /tmp/mv &&
// /tmp/mv/bin/pip install math-verify); it runs bench/reward_bench_math_verify.py. One thread.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reward/reward.h"

#ifndef OVR_SOURCE_DIR
#define OVR_SOURCE_DIR "."
#endif

namespace {

struct Case {
  std::string id, response, answer;
  bool truncated;
  int expected;
};

std::vector<Case> load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "reward_bench: cannot open %s\n", path.c_str());
    std::exit(1);
  }
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j.at("id"), j.at("response"), j.at("answer"), j.value("truncated", false), j.at("expected").get<int>()});
  }
  return cases;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string python;
  double seconds = 2.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--math-verify") python = argv[i + 1];
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: reward_bench [--math-verify PYTHON] [--seconds S]\n");
      return 2;
    }
  }
  const std::string dir = OVR_SOURCE_DIR "/tests/fixtures/reward/";
  std::vector<Case> cases = load(dir + "cases.jsonl");
  for (Case& c : load(dir + "kinds.jsonl")) cases.push_back(std::move(c));

  int agree = 0;
  for (const Case& c : cases) agree += static_cast<int>(ovr::reward::score_response(c.response, c.answer, c.truncated).reward) == c.expected;
  // The rate is measured over the cases math-verify answers without its 5 s timeout (not
  // hostile_* or depth_*), the same set reward_bench_math_verify.py times.
  std::vector<const Case*> timed;
  for (const Case& c : cases)
    if (c.id.rfind("hostile_", 0) != 0 && c.id.rfind("depth_", 0) != 0) timed.push_back(&c);
  long verdicts = 0;
  double start = now(), elapsed = 0;
  while (elapsed < seconds) {
    for (const Case* c : timed) verdicts += ovr::reward::score_response(c->response, c->answer, c->truncated).reward >= 0;
    elapsed = now() - start;
  }
  std::printf("cases: %zu (cases.jsonl + kinds.jsonl); rate over the %zu that are not hostile_* or depth_*\n",
              cases.size(), timed.size());
  std::printf("%-28s %12s %14s\n", "verifier", "verdicts/s", "agree w/ label");
  std::printf("%-28s %12.0f %10d/%zu\n", "ovr", verdicts / elapsed, agree, cases.size());
  std::fflush(stdout);
  if (!python.empty()) {
    std::string cmd = python + " " OVR_SOURCE_DIR "/bench/reward_bench_math_verify.py " + dir + "cases.jsonl " + dir + "kinds.jsonl";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "reward_bench: the math-verify baseline failed\n");
  }

  // Hostile answers: each must be wrong within 0.2 s.
  ovr::reward::EquivOptions unlimited;
  unlimited.max_length = 10'000'000;
  std::string deep_fracs, long_sum = "1", list_a, list_b;
  for (int i = 0; i < 20'000; ++i) deep_fracs += "\\frac{1}{";
  deep_fracs += "1" + std::string(20'000, '}');
  for (int i = 0; i < 500'000; ++i) long_sum += "+1";
  for (int i = 0; i < 400; ++i) list_a += "1,", list_b += "2,";
  list_a += "1", list_b += "2";
  std::string nested_sqrt;
  for (int i = 0; i < 5'000; ++i) nested_sqrt += "\\sqrt{";
  nested_sqrt += "2" + std::string(5'000, '}');
  std::string ineq;
  for (int i = 0; i < 2'000; ++i) ineq += "x>" + std::to_string(i) + ",";
  ineq += "x>0";
  const std::vector<std::pair<const char*, std::string>> hostile = {
      {"50k nested braces", std::string(50'000, '{') + "1" + std::string(50'000, '}')},
      {"1M '('", std::string(1'000'000, '(')},
      {"5k nested parentheses", std::string(5'000, '(') + "1" + std::string(5'000, ')')},
      {"20k nested fractions", deep_fracs},
      {"5k nested roots", nested_sqrt},
      {"sum of 500k terms", long_sum},
      {"power tower", "9^9^9^9^9"},
      {"((100!)!)!", "((100!)!)!"},
      {"2k inequalities", ineq},
      {"400-element lists", list_a},
  };
  double worst = 0;
  const char* worst_name = "";
  for (const auto& [name, text] : hostile) {
    double t0 = now();
    bool accepted = ovr::reward::answers_equivalent(text, name == std::string("400-element lists") ? list_b : "2", unlimited);
    double t = now() - t0;
    if (accepted) std::printf("hostile %s was ACCEPTED\n", name);
    if (t > worst) worst = t, worst_name = name;
  }
  std::printf("slowest hostile answer: %.1f ms (%s); bound 200 ms: %s\n", worst * 1e3, worst_name, worst < 0.2 ? "ok" : "EXCEEDED");
  return worst < 0.2 ? 0 : 1;
}
