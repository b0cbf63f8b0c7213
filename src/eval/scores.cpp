#include "eval/scores.h"

#include <map>

#include "common/error.h"
#include "reward/reward.h"

namespace ovr::eval {

double pass_at(int n, int c, int j) {
  if (n - c < j) return 1.0;
  double fail = 1.0;  // C(n-c, j) / C(n, j) = prod_{i=n-c+1..n} (1 - j / i)
  for (int i = n - c + 1; i <= n; ++i) fail *= 1.0 - double(j) / double(i);
  return 1.0 - fail;
}

int majority_index(const std::vector<std::string>& answers) {
  std::vector<int> rep, count;  // groups: representative index, votes
  for (int i = 0; i < int(answers.size()); ++i) {
    if (answers[size_t(i)].empty()) continue;
    size_t g = 0;
    while (g < rep.size() && !reward::answers_equivalent(answers[size_t(i)], answers[size_t(rep[g])])) ++g;
    if (g == rep.size()) rep.push_back(i), count.push_back(0);
    ++count[g];
  }
  if (rep.empty()) return answers.empty() ? -1 : 0;
  size_t best = 0;
  for (size_t g = 1; g < rep.size(); ++g)
    if (count[g] > count[best]) best = g;
  return rep[best];
}

namespace {

struct ProblemSamples {
  std::vector<double> score;
  std::vector<std::string> extracted;
  nlohmann::json subject, level;
  bool has_image = false;
};

// avg@k, pass@j for j in `js`, maj@k over a set of problems.
nlohmann::json figures(const std::vector<const ProblemSamples*>& problems, int k, const std::vector<int>& js) {
  double avg = 0, maj = 0;
  std::vector<double> pass(js.size(), 0.0);
  for (const ProblemSamples* p : problems) {
    int c = 0;
    for (double s : p->score) avg += s, c += s > 0.5;
    for (size_t i = 0; i < js.size(); ++i) pass[i] += pass_at(k, c, js[i]);
    const int m = majority_index(p->extracted);
    maj += m >= 0 ? p->score[size_t(m)] : 0.0;
  }
  const double n = std::max<double>(1.0, double(problems.size()));
  nlohmann::json j = {{"problems", problems.size()}, {"avg_at_k", avg / (n * k)}, {"maj_at_k", maj / n}};
  nlohmann::json pj = nlohmann::json::object();
  for (size_t i = 0; i < js.size(); ++i) pj[std::to_string(js[i])] = pass[i] / n;
  j["pass_at"] = pj;
  j["pass_at_k"] = pass.back() / n;
  return j;
}

}  // namespace

nlohmann::json summarize(const std::vector<nlohmann::json>& results, int k) {
  if (k < 1) throw Error("summarize: k must be at least 1");
  std::map<int64_t, ProblemSamples> problems;  // by row
  double tokens = 0, truncated = 0;
  for (const auto& r : results) {
    ProblemSamples& p = problems[r.at("row").get<int64_t>()];
    const int s = r.at("sample").get<int>();
    if (s < 0 || s >= k) throw Error("summarize: sample " + std::to_string(s) + " outside 0.." + std::to_string(k - 1));
    p.score.resize(size_t(k), -1.0), p.extracted.resize(size_t(k));
    p.score[size_t(s)] = r.at("score").get<double>();
    p.extracted[size_t(s)] = r.at("extracted").get<std::string>();
    p.subject = r.value("subject", nlohmann::json());
    p.level = r.value("level", nlohmann::json());
    p.has_image = r.value("has_image", false);
    tokens += r.value("response_tokens", 0.0);
    truncated += r.value("finish_reason", std::string()) == "length";
  }
  std::vector<int> js;
  for (int j = 1; j < k; j *= 2) js.push_back(j);
  js.push_back(k);
  std::vector<const ProblemSamples*> all;
  std::map<std::string, std::vector<const ProblemSamples*>> by_subject, by_level;
  int64_t images = 0;
  for (const auto& [row, p] : problems) {
    for (double s : p.score)
      if (s < 0) throw Error("summarize: row " + std::to_string(row) + " lacks some of its " + std::to_string(k) + " samples");
    all.push_back(&p);
    images += p.has_image;
    if (p.subject.is_string()) by_subject[p.subject.get<std::string>()].push_back(&p);
    if (p.level.is_string()) by_level[p.level.get<std::string>()].push_back(&p);
  }
  nlohmann::json s = figures(all, k, js);
  s["samples"] = results.size();
  s["text_problems"] = int64_t(problems.size()) - images;
  s["image_problems"] = images;
  s["response_tokens_mean"] = tokens / std::max<double>(1.0, double(results.size()));
  s["truncated"] = truncated / std::max<double>(1.0, double(results.size()));
  for (const auto& [name, groups] : {std::make_pair("by_subject", &by_subject), std::make_pair("by_level", &by_level)}) {
    if (groups->empty()) continue;
    nlohmann::json g = nlohmann::json::object();
    for (const auto& [key, members] : *groups) {
      nlohmann::json f = figures(members, k, js);
      g[key] = {{"problems", f["problems"]}, {"avg_at_k", f["avg_at_k"]}, {"pass_at_k", f["pass_at_k"]}, {"maj_at_k", f["maj_at_k"]}};
    }
    s[name] = g;
  }
  return s;
}

nlohmann::json summary_fields(const nlohmann::json& result) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* key : {"row", "sample", "score", "extracted", "subject", "level", "has_image", "response_tokens", "finish_reason"})
    if (result.contains(key)) out[key] = result[key];
  return out;
}

}  // namespace ovr::eval
