#include "eval/benchmark.h"

#include <cctype>
#include <cerrno>
#include <optional>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/benchmark_formats.h"
#include "io/fs.h"
#include "io/jsonl.h"
#include "reward/normalize.h"
#include "reward/reward.h"

namespace ovr::eval {

namespace {

const char* kBoxedInstruction = "Please reason step by step, and put your final answer within \\boxed{}.";
const char* kChoiceInstruction = "Please reason step by step, and put the letter of the correct option within \\boxed{}.";

std::string letter(size_t i) { return std::string(1, char('A' + i)); }

// "Options: A, B, C" when the options are their own labels (MATH-Vision's options drawn in the
// picture), else one "A. text" line per option.
std::string options_block(const std::vector<std::string>& options) {
  bool labels_only = true;
  for (size_t i = 0; i < options.size(); ++i) labels_only = labels_only && options[i] == letter(i);
  std::string s = "\n\nOptions:";
  for (size_t i = 0; i < options.size(); ++i) s += labels_only ? (i ? ", " : " ") + letter(i) : "\n" + letter(i) + ". " + options[i];
  return s;
}

// Question text with <imageN> placeholders -> user turn items; images[N-1] at the first mention of
// each; images no placeholder names go first.
text::ChatMessage question_turn(const std::string& text, const std::vector<std::string>& images,
                                 std::vector<std::string>& images_in_order) {
  text::ChatMessage user = text::ChatMessage::text("user", "");
  user.content.clear();
  std::vector<bool> used(images.size(), false);
  std::vector<text::ChatItem> items;
  std::string pending;
  for (size_t i = 0; i < text.size();) {
    size_t n = 0, j = i + 6, digits = 0;  // <image1> (MATH-Vision) or <image 1> (MMMU-Pro)
    if (text.compare(i, 6, "<image") == 0) {
      if (j < text.size() && text[j] == ' ') ++j;
      for (; j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])); ++j, ++digits) n = n * 10 + size_t(text[j] - '0');
    }
    if (digits > 0 && j < text.size() && text[j] == '>') {
      if (n >= 1 && n <= images.size() && !used[n - 1]) {
        if (!pending.empty()) items.push_back({text::ChatItem::Type::Text, pending}), pending.clear();
        items.push_back({text::ChatItem::Type::Image, ""});
        images_in_order.push_back(images[n - 1]);
        used[n - 1] = true;
      } else {  // a placeholder without its file (or a second mention) stays as written, as MATH-V's scripts keep it
        pending.append(text, i, j + 1 - i);
      }
      i = j + 1;
      continue;
    }
    pending += text[i++];
  }
  if (!pending.empty()) items.push_back({text::ChatItem::Type::Text, pending});
  std::vector<text::ChatItem> front;
  std::vector<std::string> front_images;
  for (size_t k = 0; k < images.size(); ++k)
    if (!used[k]) front.push_back({text::ChatItem::Type::Image, ""}), front_images.push_back(images[k]);
  images_in_order.insert(images_in_order.begin(), front_images.begin(), front_images.end());
  user.content = front;
  user.content.insert(user.content.end(), items.begin(), items.end());
  return user;
}

}  // namespace

FieldMap parse_field_map(const std::string& spec) {
  FieldMap m;
  size_t a = 0;
  while (a < spec.size()) {
    const size_t b = std::min(spec.find(',', a), spec.size());
    const std::string item = spec.substr(a, b - a);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw ConfigError("--fields: expected KEY=FIELD,..., got '" + item + "'");
    const std::string key = item.substr(0, eq);
    if (!m.names.count(key))
      throw ConfigError("--fields: unknown key '" + key + "' (id, question, messages, image, images, answer, options, subject, level)");
    m.names[key] = item.substr(eq + 1);
    a = b + 1;
  }
  return m;
}

Benchmark load_benchmark(const std::string& path, const std::string& format, const FieldMap& generic_fields,
                         const std::string& instruction) {
  if (!is_format(format)) throw ConfigError("--format: expected " + std::string(format_names()) + ", got '" + format + "'");
  std::ifstream in = io::open_jsonl(path);
  const std::string dir = io::parent_dir(path);
  Benchmark out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const nlohmann::json j = io::parse_json_object(line);
      const SourceRow r = read_row(format, j, generic_fields);
      if (r.options.size() > 26) throw Error("more than 26 options");
      // A relative image: beside the file, else in the format's image folders.
      auto resolve = [&](const std::string& p) {
        if (p.empty() || p.front() == '/') return p;
        for (const std::string& sub : r.image_dirs)
          if (io::path_exists(io::join_path(io::join_path(dir, sub), p))) return io::join_path(io::join_path(dir, sub), p);
        return io::join_path(dir, p);
      };
      Problem p;
      p.line = n;
      p.prompt.index = n;
      p.prompt.source = path + ":" + std::to_string(n);
      p.prompt.id = r.id.empty() ? std::to_string(n) : r.id;
      p.subject = r.subject, p.level = r.level, p.decimal_places = r.decimal_places;
      p.options = r.options;
      const std::string suffix = instruction == "auto" ? (p.options.empty() ? kBoxedInstruction : kChoiceInstruction)
                                 : instruction == "none" ? "" : instruction;
      if (r.question) {
        std::string text = *r.question;
        if (!p.options.empty() && !r.options_in_question) text += options_block(p.options);
        if (!suffix.empty()) text += "\n" + suffix;
        std::vector<std::string> ordered;
        p.prompt.messages.push_back(question_turn(text, r.images, ordered));
        for (const auto& s : ordered) p.prompt.images.push_back(resolve(s));
      } else {  // ovr's chat form, used as written; the instruction ends the last user text
        p.prompt.messages = text::chat_messages_from_json(*r.messages);
        for (const auto& s : text::chat_image_sources(*r.messages)) p.prompt.images.push_back(resolve(s));
        for (auto it = p.prompt.messages.rbegin(); it != p.prompt.messages.rend() && !suffix.empty(); ++it) {
          if (it->role != "user") continue;
          it->content.push_back({text::ChatItem::Type::Text, "\n" + suffix});
          break;
        }
        for (const auto& m : p.prompt.messages)
          if (m.role == "assistant") throw Error("a prompt must not hold an assistant turn");
      }
      for (const std::string& img : p.prompt.images)
        if (img.empty() || !io::path_exists(img)) throw Error("image " + img + ": no such file");
      p.prompt.answer = reference_choice(r.answer, p.options);
      out.problems.push_back(std::move(p));
    } catch (const std::exception& e) {  // nlohmann and ovr errors alike: the row is skipped
      out.bad_rows.push_back({n, e.what()});
    }
  }
  return out;
}

std::string format_for_benchmark(const std::string& name) {
  if (name == "math500" || name == "mathvision") return name;
  for (const char* prefix : {"mathvista", "mathverse", "dynamath"})
    if (name.rfind(prefix, 0) == 0) return prefix;
  if (name.rfind("aime", 0) == 0) return "aime";
  if (name.rfind("amc", 0) == 0) return "amc";
  if (name.rfind("mmmu_pro", 0) == 0 || name.rfind("mmmu-pro", 0) == 0) return "mmmu_pro";
  return "generic";
}

std::string reference_choice(const std::string& answer, const std::vector<std::string>& options) {
  if (options.empty()) return answer;
  if (const std::string l = chosen_option(answer, {}); !l.empty()) return l;  // "(C)" is C
  for (size_t i = 0; i < options.size(); ++i)
    if (options[i] == answer) return letter(i);
  return answer;
}

reward::RewardResult score_answer(const std::string& response, const std::string& answer,
                                  const std::vector<std::string>& options, bool truncated, const reward::RewardOptions& opt) {
  reward::RewardResult r = reward::score_response(response, answer, truncated, opt);
  if (!options.empty() && !r.extracted.empty()) {  // multiple choice: compare the chosen letter
    const bool right = chosen_option(r.extracted, options) == reference_choice(answer, options);
    r.reward = right && !truncated ? 1.0 : 0.0;
    r.reason = truncated ? "truncated" : right ? "correct" : "wrong";
  }
  return r;
}

reward::RewardOptions problem_reward_options(const Problem& p, reward::RewardOptions opt) {
  if (p.decimal_places) opt.equiv.decimal_places = *p.decimal_places;
  return opt;
}

reward::RewardResult score_problem(const std::string& response, const Problem& p, bool truncated,
                                   const reward::RewardOptions& opt) {
  return score_answer(response, p.prompt.answer, p.options, truncated, problem_reward_options(p, opt));
}

std::string chosen_option(const std::string& extracted, const std::vector<std::string>& options) {
  // A letter in any wrapping models write: B, (B), B), B., B: ..., \textbf{(B)}, \text{Option B},
  // "Answer: B", "(B) <the option's text>" (the reward's normalisation and choice forms).
  const std::string t = reward::normalize_answer(extracted);
  if (t.empty()) return "";
  std::optional<char> letter_chosen = reward::choice_letter(t);
  const bool bare = letter_chosen && (t.size() == 1 || (t.size() == 2 && !std::isalpha(static_cast<unsigned char>(t[1]))));
  if (!letter_chosen) letter_chosen = reward::leading_choice(t);
  if (letter_chosen) {
    // A bare letter that is the text of another option ("C" where option A reads "C") says
    // nothing for sure: no option.
    for (size_t i = 0; i < options.size() && bare; ++i)
      if (letter(i)[0] != *letter_chosen && reward::normalize_answer(options[i]) == std::string(1, *letter_chosen)) return "";
    return std::string(1, *letter_chosen);
  }
  // The option's text alone: the one option it equals (none, or several, is no choice).
  std::string chosen;
  for (size_t i = 0; i < options.size(); ++i)
    if (reward::answers_equivalent(extracted, options[i])) {
      if (!chosen.empty()) return "";
      chosen = letter(i);
    }
  return chosen;
}

}  // namespace ovr::eval
