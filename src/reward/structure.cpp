// Reading the shape of an answer (structure.h).
#include "reward/structure.h"

#include <algorithm>

#include "reward/normalize.h"
#include "reward/real_set.h"
#include "reward/text_util.h"

namespace ovr::reward {
namespace {

const char* const kMatrixEnvironments[] = {"pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix",
                                           "matrix",  "smallmatrix", "array"};

// "\begin{NAME}...\end{NAME}" around the whole text: NAME and the body, else nullopt.
std::optional<std::pair<std::string, std::string_view>> environment(std::string_view t) {
  if (t.compare(0, 7, "\\begin{") != 0) return std::nullopt;
  size_t close = t.find('}', 7);
  if (close == npos) return std::nullopt;
  std::string name(t.substr(7, close - 7));
  std::string end = "\\end{" + name + "}";
  if (t.size() < close + 1 + end.size() || t.compare(t.size() - end.size(), end.size(), end) != 0) return std::nullopt;
  std::string_view body = t.substr(close + 1, t.size() - end.size() - close - 1);
  if (name == "array" && !body.empty() && body[0] == '{') {  // the column spec {cc}
    size_t spec = body.find('}');
    if (spec == npos) return std::nullopt;
    body = body.substr(spec + 1);
  }
  return std::make_pair(name, body);
}

// The cells of a matrix body, row by row; nullopt when rows differ in length.
std::optional<std::vector<std::vector<std::string_view>>> matrix_cells(std::string_view body) {
  std::vector<std::vector<std::string_view>> rows;
  for (std::string_view row : split_top(body, "\\\\")) {
    if (trim(row).empty()) continue;  // a trailing "\\"
    rows.push_back(split_top(row, "&"));
    if (rows.back().size() != rows.front().size()) return std::nullopt;
  }
  if (rows.empty()) return std::nullopt;
  return rows;
}

// The determinant of a 1x1..3x3 matrix of entries, as LaTeX for the parser.
std::optional<std::string> determinant(const std::vector<std::vector<std::string_view>>& m) {
  auto e = [&](size_t r, size_t c) { return "(" + std::string(m[r][c]) + ")"; };
  if (m.size() != m[0].size()) return std::nullopt;
  if (m.size() == 1) return e(0, 0);
  if (m.size() == 2) return e(0, 0) + e(1, 1) + "-" + e(0, 1) + e(1, 0);
  if (m.size() == 3)
    return e(0, 0) + "(" + e(1, 1) + e(2, 2) + "-" + e(1, 2) + e(2, 1) + ")-" + e(0, 1) + "(" + e(1, 0) + e(2, 2) +
           "-" + e(1, 2) + e(2, 0) + ")+" + e(0, 2) + "(" + e(1, 0) + e(2, 1) + "-" + e(1, 1) + e(2, 0) + ")";
  return std::nullopt;
}

// "x=2": the variable's name when the part assigns one value to one variable.
std::optional<std::string> assigned_variable(std::string_view part) {
  size_t v = variable_end(part, 0);
  if (v == npos || v >= part.size() || part[v] != '=' || part.find('=', v + 1) != npos || v + 1 == part.size())
    return std::nullopt;
  return std::string(trim(part.substr(0, v)));
}

}  // namespace

Item build_item(std::string_view raw, int depth, const EquivOptions& opt, Budget& budget) {
  Item it;
  std::string t = canonical(raw);
  budget.spend(static_cast<long>(t.size()) + 1);
  auto children = [&](Item::Kind kind, const std::vector<std::string_view>& parts) {
    it.kind = kind;
    for (auto part : parts) it.items.push_back(build_item(part, depth + 1, opt, budget));
    return it;
  };
  if (depth < 8) {
    if (auto env = environment(t); env && is_one_of(std::string_view(env->first), kMatrixEnvironments)) {
      if (auto cells = matrix_cells(env->second)) {
        if (env->first == "vmatrix") {
          if (auto det = determinant(*cells)) return build_item(*det, depth + 1, opt, budget);
        }
        it.kind = Item::kMatrix;
        it.rows = static_cast<int>(cells->size()), it.cols = static_cast<int>(cells->front().size());
        for (const auto& row : *cells)
          for (std::string_view cell : row) it.items.push_back(build_item(cell, depth + 1, opt, budget));
        return it;
      }
    }
    auto parts = split_top(t, "\\cup");
    if (parts.size() > 1) return children(Item::kUnion, parts);
    if (t.size() >= 4 && t.compare(0, 2, "\\{") == 0 && t.compare(t.size() - 2, 2, "\\}") == 0 && wrapped(t, 1)) {
      std::string_view inner = trim(std::string_view(t).substr(2, t.size() - 4));
      return children(Item::kSet, inner.empty() ? std::vector<std::string_view>{} : split_top(inner, ","));
    }
    if (t.size() >= 2 && (t[0] == '(' || t[0] == '[') && (t.back() == ')' || t.back() == ']') && wrapped(t, 0)) {
      parts = split_top(std::string_view(t).substr(1, t.size() - 2), ",");
      if (parts.size() > 1) {
        it.open = t[0], it.close = t.back();
        return children(Item::kTuple, parts);
      }
    }
    for (std::string_view sep : {",", ";"}) {
      parts = split_top(t, sep);
      if (parts.size() < 2) continue;
      // A system "x=2, y=3": the tuple of its values, ordered by variable name.
      std::vector<std::pair<std::string, std::string_view>> system;
      for (std::string_view part : parts)
        if (auto name = assigned_variable(part)) system.emplace_back(*name, part);
      std::sort(system.begin(), system.end());
      bool distinct = std::adjacent_find(system.begin(), system.end(), [](const auto& a, const auto& b) {
                        return a.first == b.first;
                      }) == system.end();
      // "x_1 = 0, x_2 = 5" names the roots of one unknown: a list, not a system.
      auto base = [](const std::string& name) { return name.substr(0, name.find('_')); };
      bool one_unknown = !system.empty() && std::all_of(system.begin(), system.end(), [&](const auto& v) {
        return base(v.first) == base(system.front().first) && v.first.find('_') != std::string::npos;
      });
      if (system.size() == parts.size() && distinct && !one_unknown) {
        parts.clear();
        for (const auto& entry : system) parts.push_back(entry.second);
        it.open = '(', it.close = ')';
        return children(Item::kTuple, parts);
      }
      return children(Item::kList, parts);
    }
    for (std::string_view pm : {"\\pm", "\\mp"}) {  // "\frac{1\pm\sqrt5}{2}": the list of both signs
      size_t at = t.find(pm);
      if (at == npos || (at + 3 < t.size() && is_alpha(t[at + 3]))) continue;
      std::string before = t.substr(0, at), after = t.substr(at + 3);
      bool minus_first = pm == "\\mp";
      std::string plus = before + (minus_first ? "-" : "+") + after, minus = before + (minus_first ? "+" : "-") + after;
      return children(Item::kList, {plus, minus});
    }
  }
  it.raw = std::string(raw);
  it.text = std::move(t);
  if (it.text.find('=') == npos && !has_relation(it.text)) it.expr = parse_expression(it.text, opt.max_depth);
  return it;
}

}  // namespace ovr::reward
