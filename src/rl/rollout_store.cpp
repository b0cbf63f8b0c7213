#include "rl/rollout_store.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/gather.h"
#include "common/mpi_runtime.h"
#include "io/hdf5_checkpoint.h"

namespace ovr::rl {

namespace {

// One 1-D dataset: this rank's values and where they start in the file.
template <class T>
struct Column {
  Column(const char* n, io::DType d) : name(n), dtype(d) {}
  const char* name;
  io::DType dtype;
  std::vector<T> values;
  int64_t offset = 0, total = 0;
};

template <class T>
void place(Column<T>& c, MPI_Comm comm) {
  const auto [offset, total] = offset_and_total(comm, c.values.size());
  c.offset = int64_t(offset), c.total = int64_t(total);
}

void append(std::vector<uint8_t>& bytes, std::vector<int64_t>& lengths, const std::string& s) {
  bytes.insert(bytes.end(), s.begin(), s.end());
  lengths.push_back(int64_t(s.size()));
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "\n" : "") + v[i];
  return out;
}

}  // namespace

void write_rollouts(const std::string& path, MPI_Comm comm, const Rollouts& r) {
  const int64_t group_offset = int64_t(offset_and_total(comm, r.groups.size()).first);

  Column<int32_t> prompt_tokens{"/rollout/prompt_tokens", io::DType::I32}, tokens{"/rollout/response_tokens", io::DType::I32},
      sample_index{"/rollout/sample_index", io::DType::I32};
  Column<int64_t> prompt_lengths{"/rollout/prompt_lengths", io::DType::I64}, dataset_index{"/rollout/dataset_index", io::DType::I64},
      id_len{"/rollout/id_lengths", io::DType::I64}, answer_len{"/rollout/answer_lengths", io::DType::I64},
      image_len{"/rollout/image_lengths", io::DType::I64}, group{"/rollout/sample_group", io::DType::I64},
      response_lengths{"/rollout/response_lengths", io::DType::I64}, finish_len{"/rollout/finish_reason_lengths", io::DType::I64},
      extracted_len{"/rollout/extracted_lengths", io::DType::I64}, reason_len{"/rollout/reward_reason_lengths", io::DType::I64};
  Column<uint8_t> id_bytes{"/rollout/id", io::DType::U8}, answer_bytes{"/rollout/answer", io::DType::U8},
      image_bytes{"/rollout/image", io::DType::U8}, finish_bytes{"/rollout/finish_reason", io::DType::U8},
      extracted_bytes{"/rollout/extracted", io::DType::U8}, reason_bytes{"/rollout/reward_reason", io::DType::U8};
  Column<float> logprobs{"/rollout/behaviour_logprobs", io::DType::F32}, reward{"/rollout/reward", io::DType::F32};

  for (const RolloutGroup& g : r.groups) {
    prompt_tokens.values.insert(prompt_tokens.values.end(), g.prompt_tokens.begin(), g.prompt_tokens.end());
    prompt_lengths.values.push_back(int64_t(g.prompt_tokens.size()));
    dataset_index.values.push_back(g.dataset_index);
    append(id_bytes.values, id_len.values, g.id);
    append(answer_bytes.values, answer_len.values, g.answer);
    append(image_bytes.values, image_len.values, join(g.images));
  }
  for (const RolloutSample& s : r.samples) {
    if (s.tokens.size() != s.logprobs.size()) throw Error("rollouts: a sample has " + std::to_string(s.tokens.size()) +
                                                         " tokens but " + std::to_string(s.logprobs.size()) + " log-probs");
    group.values.push_back(group_offset + s.group);
    sample_index.values.push_back(s.sample_index);
    tokens.values.insert(tokens.values.end(), s.tokens.begin(), s.tokens.end());
    logprobs.values.insert(logprobs.values.end(), s.logprobs.begin(), s.logprobs.end());
    response_lengths.values.push_back(int64_t(s.tokens.size()));
    reward.values.push_back(s.reward);
    append(finish_bytes.values, finish_len.values, s.finish_reason);
    append(extracted_bytes.values, extracted_len.values, s.extracted);
    append(reason_bytes.values, reason_len.values, s.reward_reason);
  }

  io::CheckpointAttrs attrs;
  attrs.step = r.policy_step;
  attrs.role = "rollouts";
  attrs.model_config = r.model_config;
  attrs.run_config = r.run_config;
  attrs.extra["rollout"] = nlohmann::json{{"iteration", r.iteration}, {"seed", r.seed}, {"max_new_tokens", r.max_new_tokens}}.dump();
  io::CheckpointWriter w(path, comm, attrs);
  auto each = [&](auto&& fn) {
    for (auto* c : {&prompt_tokens, &tokens, &sample_index}) fn(*c);
    for (auto* c : {&prompt_lengths, &dataset_index, &id_len, &answer_len, &image_len, &group, &response_lengths,
                    &finish_len, &extracted_len, &reason_len})
      fn(*c);
    for (auto* c : {&id_bytes, &answer_bytes, &image_bytes, &finish_bytes, &extracted_bytes, &reason_bytes}) fn(*c);
    for (auto* c : {&logprobs, &reward}) fn(*c);
  };
  each([&](auto& c) {
    place(c, comm);
    w.define(c.name, c.dtype, {c.total});
  });
  each([&](auto& c) { w.write_shard(c.name, c.offset, int64_t(c.values.size()), c.values.data()); });
  w.commit(/*update_latest=*/false);
}

namespace {

template <class T>
std::vector<T> read_all(io::CheckpointReader& r, const char* name, io::DType want) {
  if (!r.has(name)) throw Error(r.path() + ": no dataset " + name + " (not a rollout file?)");
  const io::TensorInfo info = r.info(name);
  if (info.dtype != want || info.shape.size() != 1)
    throw Error(r.path() + ": " + name + " is " + io::dtype_name(info.dtype) + io::shape_string(info.shape) +
                ", expected 1-D " + io::dtype_name(want));
  std::vector<T> v(static_cast<size_t>(info.shape[0]));
  if (!v.empty()) r.read(name, v.data());
  return v;
}

// Splits a flat column into rows by lengths, checking that they add up.
template <class T>
std::vector<std::vector<T>> split(const std::vector<T>& flat, const std::vector<int64_t>& lengths, const std::string& what) {
  std::vector<std::vector<T>> rows;
  size_t at = 0;
  for (int64_t n : lengths) {
    if (n < 0 || at + size_t(n) > flat.size()) throw Error(what + ": lengths exceed the data");
    rows.emplace_back(flat.begin() + long(at), flat.begin() + long(at + size_t(n)));
    at += size_t(n);
  }
  if (at != flat.size()) throw Error(what + ": lengths do not cover the data");
  return rows;
}

std::vector<std::string> strings(io::CheckpointReader& r, const char* bytes, const char* lengths) {
  const auto rows = split(read_all<uint8_t>(r, bytes, io::DType::U8), read_all<int64_t>(r, lengths, io::DType::I64),
                          r.path() + ": " + bytes);
  std::vector<std::string> out;
  for (const auto& row : rows) out.emplace_back(row.begin(), row.end());
  return out;
}

}  // namespace

Rollouts read_rollout_index(const std::string& path) {
  io::CheckpointReader r(path, MPI_COMM_SELF);
  if (r.attrs().role != "rollouts") throw Error(path + ": role is '" + r.attrs().role + "', not a rollout file");
  Rollouts out;
  out.policy_step = r.attrs().step;
  out.model_config = r.attrs().model_config;
  out.run_config = r.attrs().run_config;
  const auto it = r.attrs().extra.find("rollout");
  if (it != r.attrs().extra.end()) {
    const auto j = nlohmann::json::parse(it->second, nullptr, false);
    if (j.is_object()) {
      out.iteration = j.value("iteration", int64_t(0));
      out.seed = j.value("seed", uint64_t(0));
      out.max_new_tokens = j.value("max_new_tokens", int64_t(0));
    }
  }
  const std::string where = path + ": ";
  const auto prompts = split(read_all<int32_t>(r, "/rollout/prompt_tokens", io::DType::I32),
                             read_all<int64_t>(r, "/rollout/prompt_lengths", io::DType::I64), where + "prompts");
  const auto dataset_index = read_all<int64_t>(r, "/rollout/dataset_index", io::DType::I64);
  const auto ids = strings(r, "/rollout/id", "/rollout/id_lengths");
  const auto answers = strings(r, "/rollout/answer", "/rollout/answer_lengths");
  const auto images = strings(r, "/rollout/image", "/rollout/image_lengths");
  const size_t g = prompts.size();
  if (dataset_index.size() != g || ids.size() != g || answers.size() != g || images.size() != g)
    throw Error(where + "group datasets of different lengths");
  for (size_t i = 0; i < g; ++i) {
    RolloutGroup grp{dataset_index[i], ids[i], prompts[i], answers[i], {}};
    for (size_t a = 0, b; a < images[i].size(); a = b + 1) {
      b = images[i].find('\n', a);
      if (b == std::string::npos) b = images[i].size();
      grp.images.push_back(images[i].substr(a, b - a));
    }
    out.groups.push_back(std::move(grp));
  }
  const auto lengths = read_all<int64_t>(r, "/rollout/response_lengths", io::DType::I64);
  const auto group = read_all<int64_t>(r, "/rollout/sample_group", io::DType::I64);
  const auto sample_index = read_all<int32_t>(r, "/rollout/sample_index", io::DType::I32);
  const auto reward = read_all<float>(r, "/rollout/reward", io::DType::F32);
  const auto finish = strings(r, "/rollout/finish_reason", "/rollout/finish_reason_lengths");
  const auto extracted = strings(r, "/rollout/extracted", "/rollout/extracted_lengths");
  const auto reason = strings(r, "/rollout/reward_reason", "/rollout/reward_reason_lengths");
  const size_t n = lengths.size();
  if (group.size() != n || sample_index.size() != n || reward.size() != n || finish.size() != n || extracted.size() != n ||
      reason.size() != n)
    throw Error(where + "sample datasets of different lengths");
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (group[i] < 0 || size_t(group[i]) >= g) throw Error(where + "sample " + std::to_string(i) + " names group " + std::to_string(group[i]));
    if (lengths[i] < 0) throw Error(where + "sample " + std::to_string(i) + " has a negative length");
    total += lengths[i];
    out.samples.push_back({group[i], sample_index[i], lengths[i], {}, {}, reward[i], finish[i], extracted[i], reason[i]});
  }
  for (const char* name : {"/rollout/response_tokens", "/rollout/behaviour_logprobs"}) {
    if (!r.has(name)) throw Error(where + "no dataset " + name + " (not a rollout file?)");
    const io::TensorInfo info = r.info(name);
    if (info.shape.size() != 1 || info.shape[0] != total)
      throw Error(where + name + " holds " + io::shape_string(info.shape) + " values, the response lengths add up to " + std::to_string(total));
  }
  return out;
}

uint64_t read_rollout_responses(const std::string& path, MPI_Comm comm, const std::vector<int64_t>& samples, Rollouts* ro) {
  // Where each sample's tokens start in the flat datasets.
  std::vector<int64_t> start(ro->samples.size() + 1, 0);
  for (size_t i = 0; i < ro->samples.size(); ++i) start[i + 1] = start[i] + ro->samples[i].length;
  // This rank's samples as runs of adjacent ones, one element range each; every rank passes as many
  // ranges (collective reads), the short lists padded with empty ones.
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (size_t k = 0; k < samples.size(); ++k) {
    const int64_t i = samples[k];
    if (i < 0 || size_t(i) >= ro->samples.size() || (k > 0 && i <= samples[k - 1]))
      throw Error(path + ": read_rollout_responses: sample list must be increasing indices of the file's samples");
    if (k > 0 && i == samples[k - 1] + 1) ranges.back().second += ro->samples[size_t(i)].length;
    else ranges.emplace_back(start[size_t(i)], ro->samples[size_t(i)].length);
  }
  int64_t mine = int64_t(ranges.size()), most = 0;
  OVR_MPI_CHECK(MPI_Allreduce(&mine, &most, 1, MPI_INT64_T, MPI_MAX, comm));
  const int64_t end = ranges.empty() ? 0 : ranges.back().first + ranges.back().second;
  ranges.resize(size_t(most), {end, 0});
  int64_t count = 0;
  for (const auto& rg : ranges) count += rg.second;
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  std::vector<float> logprobs(static_cast<size_t>(count));
  io::CheckpointReader r(path, comm);
  r.read_shards("/rollout/response_tokens", ranges, tokens.data());
  r.read_shards("/rollout/behaviour_logprobs", ranges, logprobs.data());
  size_t at = 0;
  for (int64_t i : samples) {
    RolloutSample& s = ro->samples[size_t(i)];
    s.tokens.assign(tokens.begin() + long(at), tokens.begin() + long(at + size_t(s.length)));
    s.logprobs.assign(logprobs.begin() + long(at), logprobs.begin() + long(at + size_t(s.length)));
    at += size_t(s.length);
  }
  return uint64_t(count) * (sizeof(int32_t) + sizeof(float));
}

Rollouts read_rollouts(const std::string& path) {
  Rollouts out = read_rollout_index(path);
  std::vector<int64_t> all(out.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  read_rollout_responses(path, MPI_COMM_SELF, all, &out);
  return out;
}

}  // namespace ovr::rl
