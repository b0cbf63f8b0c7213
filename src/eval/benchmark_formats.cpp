#include "eval/benchmark_formats.h"

#include <cctype>
#include <cmath>

#include "common/error.h"

namespace ovr::eval {

namespace {

const char* kFormats = "math500, mathvision, aime, amc, mmmu_pro, mathvista, mathverse, dynamath or generic";

std::string as_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::optional<std::string> optional_text(const nlohmann::json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return std::nullopt;
  return as_text(j[key]);
}

const nlohmann::json& metadata(const nlohmann::json& j) {
  static const nlohmann::json none = nlohmann::json::object();
  return j.contains("metadata") && j["metadata"].is_object() ? j["metadata"] : none;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// "['a', \"b's\", 'c']": a Python list literal of strings (MMMU-Pro writes its options so), or
// nullopt when the text is not one.
std::optional<std::vector<std::string>> python_string_list(const std::string& s) {
  size_t i = 0;
  auto skip = [&] { while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i; };
  skip();
  if (i >= s.size() || s[i++] != '[') return std::nullopt;
  std::vector<std::string> out;
  for (skip(); i < s.size() && s[i] != ']'; skip()) {
    const char quote = s[i];
    if (quote != '\'' && quote != '"') return std::nullopt;
    std::string item;
    for (++i; i < s.size() && s[i] != quote; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        const char e = s[++i];
        item += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        item += s[i];
      }
    }
    if (i >= s.size()) return std::nullopt;
    out.push_back(item);
    ++i;
    skip();
    if (i < s.size() && s[i] == ',') ++i;
  }
  if (i >= s.size()) return std::nullopt;
  return out;
}

// A string, a list, a Python list literal, or null; empty strings dropped ("image": "" is no image).
std::vector<std::string> string_list(const nlohmann::json& v, const std::string& what) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) {
    if (auto list = python_string_list(v.get<std::string>())) return *list;
    if (!v.get<std::string>().empty()) out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) throw Error("\"" + what + "\" must be a string or a list");
  for (const auto& x : v) out.push_back(as_text(x));
  return out;
}

// The generic form (and the formats that are the generic form under other field names).
// `empty_question`: what an empty question becomes ("" = an error: the row has no question).
SourceRow read_mapped(const nlohmann::json& j, const FieldMap& f, const std::string& empty_question = "") {
  SourceRow r;
  if (j.contains(f["id"])) r.id = as_text(j[f["id"]]);
  r.subject = optional_text(j, f["subject"]);
  r.level = optional_text(j, f["level"]);
  if (!j.contains(f["answer"]) || j[f["answer"]].is_null() || as_text(j[f["answer"]]).empty()) throw Error("no answer");
  r.answer = as_text(j[f["answer"]]);
  if (j.contains(f["options"])) r.options = string_list(j[f["options"]], f["options"]);
  if (j.contains(f["images"])) r.images = string_list(j[f["images"]], f["images"]);
  if (j.contains(f["image"])) {
    const auto more = string_list(j[f["image"]], f["image"]);
    r.images.insert(r.images.end(), more.begin(), more.end());
  }
  if (j.contains(f["question"])) {
    if (!j[f["question"]].is_string()) throw Error("\"" + f["question"] + "\" must be a string");
    r.question = j[f["question"]].get<std::string>();
    if (trim(*r.question).empty()) {
      if (empty_question.empty()) throw Error("empty question");
      r.question = empty_question;
    }
  } else if (j.contains(f["messages"])) {
    r.messages = j[f["messages"]];
  } else {
    throw Error("no \"" + f["question"] + "\" or \"" + f["messages"] + "\"");
  }
  return r;
}

// MathVista's "precision": the decimal places its float answer is given to (and scored at).
std::optional<int> precision_of(const nlohmann::json& j) {
  if (!j.contains("precision") || j["precision"].is_null()) return std::nullopt;
  if (!j["precision"].is_number() || j["precision"].get<double>() < 0 || j["precision"].get<double>() > 15 ||
      j["precision"].get<double>() != std::floor(j["precision"].get<double>()))
    throw Error("\"precision\" must be a whole number of decimal places (0..15)");
  return int(j["precision"].get<double>());
}

// MathVista's schema (and the MathVerse visualizer's, which shares it).
SourceRow read_mathvista_schema(const nlohmann::json& j, const std::string& empty_question = "") {
  SourceRow r = read_mapped(j, parse_field_map("id=pid,options=choices"), empty_question);
  r.decimal_places = precision_of(j);
  return r;
}

}  // namespace

const char* format_names() { return kFormats; }

bool is_format(const std::string& f) {
  for (const char* known : {"math500", "mathvision", "aime", "amc", "mmmu_pro", "mathvista", "mathverse", "dynamath", "generic"})
    if (f == known) return true;
  return false;
}

SourceRow read_row(const std::string& format, const nlohmann::json& j, const FieldMap& fields) {
  if (format == "generic") return read_mapped(j, fields);
  if (format == "math500") return read_mapped(j, parse_field_map("question=problem,id=unique_id"));
  if (format == "aime" || format == "amc") return read_mapped(j, parse_field_map("question=problem"));
  if (format == "mmmu_pro") return read_mapped(j, parse_field_map("level=topic_difficulty"));
  if (format == "mathvision") return read_mapped(j, FieldMap{});
  if (format == "mathvista") {
    SourceRow r = read_mathvista_schema(j);
    r.subject = optional_text(metadata(j), "task");
    r.level = optional_text(metadata(j), "grade");
    return r;
  }
  if (format == "mathverse") {
    SourceRow r;
    if (j.contains("pid")) {  // the visualizer's rows: MathVista's schema, images in images/
      // "Vision Only" rows have no text: the whole question is in the picture.
      r = read_mathvista_schema(j, "Answer the question shown in the image.");
      r.subject = optional_text(metadata(j), "subjects");
      r.level = optional_text(metadata(j), "problem_version");
      r.image_dirs = {"images"};
    } else {  // testmini: choices inside the question text
      r = read_mapped(j, parse_field_map("id=sample_index,level=problem_version"));
      r.subject = optional_text(metadata(j), "subject");
      if (j.value("question_type", std::string()) == "multi-choice") r.options = options_in_text(*r.question);
      r.options_in_question = !r.options.empty();
    }
    return r;
  }
  if (format == "dynamath") {
    SourceRow r = read_mapped(j, FieldMap{});
    if (j.value("answer_type", std::string()) == "multiple choice") r.options = options_in_text(*r.question);
    r.options_in_question = !r.options.empty();
    return r;
  }
  throw ConfigError("--format: expected " + std::string(kFormats) + ", got '" + format + "'");
}

std::vector<std::string> options_in_text(const std::string& question) {
  // After the last "Choices:" / "Choice:" (any case), else anywhere in the text.
  std::string lower = question;
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  size_t from = 0;
  for (size_t i = lower.find("choice"); i != std::string::npos; i = lower.find("choice", i + 1)) {
    if (lower.compare(i, 8, "choices:") == 0) from = i + 8;
    else if (lower.compare(i, 7, "choice:") == 0) from = i + 7;
  }
  const std::string s = question.substr(from);
  // "(A) yes (B) no": each "(X)" in order from A, the text up to the next.
  std::vector<size_t> marks;
  for (char c = 'A'; c <= 'Z'; ++c) {
    const size_t p = s.find(std::string("(") + c + ")", marks.empty() ? 0 : marks.back() + 3);
    if (p == std::string::npos) break;
    marks.push_back(p);
  }
  std::vector<std::string> out;
  if (marks.size() >= 2) {
    for (size_t k = 0; k < marks.size(); ++k) {
      const size_t end = k + 1 < marks.size() ? marks[k + 1] : s.size();
      out.push_back(trim(s.substr(marks[k] + 3, end - marks[k] - 3)));
    }
    return out;
  }
  // One per line: "A:40°", "A. 40°", "A) 40°", from the first line that starts with A.
  size_t a = 0;
  while (a < s.size()) {
    const size_t b = std::min(s.find('\n', a), s.size());
    const std::string line = trim(s.substr(a, b - a));
    a = b + 1;
    const char want = char('A' + out.size());
    const bool option = line.size() >= 2 && line[0] == want && (line[1] == ':' || line[1] == '.' || line[1] == ')');
    if (!option && out.empty()) continue;  // text before the first option
    if (!option) break;
    out.push_back(trim(line.substr(2)));
  }
  if (out.size() < 2) out.clear();
  return out;
}

}  // namespace ovr::eval
