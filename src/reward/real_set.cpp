// Sets of reals: parsing the ways answers write them, and interval algebra to compare them.
#include "reward/real_set.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "reward/latex_expr.h"
#include "reward/normalize.h"
#include "reward/text_util.h"

namespace ovr::reward {
namespace {

constexpr double kInf = HUGE_VAL;

// ---- interval algebra -------------------------------------------------------------------------

bool empty(const Interval& i) { return i.lo > i.hi || (i.lo == i.hi && !(i.lo_closed && i.hi_closed)); }

// Sorted, merged, without empty pieces; infinite ends are open.
RealSet normalized(RealSet s) {
  for (Interval& i : s) {
    if (std::isinf(i.lo)) i.lo_closed = false;
    if (std::isinf(i.hi)) i.hi_closed = false;
  }
  s.erase(std::remove_if(s.begin(), s.end(), empty), s.end());
  std::sort(s.begin(), s.end(), [](const Interval& a, const Interval& b) {
    return a.lo < b.lo || (a.lo == b.lo && a.lo_closed && !b.lo_closed);
  });
  RealSet out;
  for (const Interval& i : s) {
    if (!out.empty() && (out.back().hi > i.lo || (out.back().hi == i.lo && (out.back().hi_closed || i.lo_closed)))) {
      Interval& last = out.back();
      if (i.hi > last.hi || (i.hi == last.hi && i.hi_closed)) last.hi = i.hi, last.hi_closed = i.hi_closed;
    } else {
      out.push_back(i);
    }
  }
  return out;
}

RealSet everything() { return {{-kInf, kInf, false, false}}; }

RealSet unite(RealSet a, const RealSet& b) {
  a.insert(a.end(), b.begin(), b.end());
  return normalized(std::move(a));
}

RealSet intersect(const RealSet& a, const RealSet& b) {
  RealSet out;
  for (const Interval& x : a)
    for (const Interval& y : b) {
      Interval i;
      if (x.lo > y.lo || (x.lo == y.lo && !x.lo_closed)) i.lo = x.lo, i.lo_closed = x.lo_closed;
      else i.lo = y.lo, i.lo_closed = y.lo_closed;
      if (x.hi < y.hi || (x.hi == y.hi && !x.hi_closed)) i.hi = x.hi, i.hi_closed = x.hi_closed;
      else i.hi = y.hi, i.hi_closed = y.hi_closed;
      out.push_back(i);
    }
  return normalized(std::move(out));
}

RealSet complement(const RealSet& s) {
  RealSet out;
  double lo = -kInf;
  bool lo_closed = false;
  for (const Interval& i : s) {
    out.push_back({lo, i.lo, lo_closed, !i.lo_closed});
    lo = i.hi, lo_closed = !i.hi_closed;
  }
  out.push_back({lo, kInf, lo_closed, false});
  return normalized(std::move(out));
}

// ---- reading ----------------------------------------------------------------------------------

// A constant real (\infty allowed), or nullopt.
std::optional<double> constant(std::string_view t, const EquivOptions& opt, Budget& budget) {
  budget.spend(static_cast<long>(t.size()) + 1);
  auto e = parse_expression(t, opt.max_depth);
  if (!e || !e->vars.empty()) return std::nullopt;
  Value v = evaluate(*e, {}, budget);
  if (std::isnan(v.real()) || !is_real(v)) return std::nullopt;
  return v.real();
}

struct Relation {
  std::string_view sign;  // "<", ">", "\leq", "\geq", "\neq"
  size_t at;
};

// The relation signs at the top level of t, in order.
std::vector<Relation> relations(std::string_view t) {
  std::vector<Relation> out;
  int depth = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth != 0) continue;
    if (c == '<' || c == '>') {
      bool or_equal = i + 1 < t.size() && t[i + 1] == '=';  // "<=" as plain text writes it
      out.push_back({or_equal ? (c == '<' ? "\\leq" : "\\geq") : t.substr(i, 1), i});
      if (or_equal) ++i;
    }
    for (std::string_view sign : {"\\leq", "\\geq", "\\neq"})
      if (t.compare(i, sign.size(), sign) == 0 && !(i + sign.size() < t.size() && is_alpha(t[i + sign.size()])))
        out.push_back({sign, i});
  }
  return out;
}

size_t sign_length(const Relation& r, std::string_view t) {
  return (r.sign.size() == 4 && t[r.at] != '\\') ? 2 : r.sign.size();  // "<=" is written with 2 chars
}

// {x : f(x) sign c} for f linear in its one variable, or |linear|: the set of solutions.
std::optional<RealSet> solve(const Expr& f, std::string_view sign, double c, Budget& budget) {
  // f is g or |g| for the linear function g this checks.
  const bool absolute = f.nodes[f.root].op == '|';
  Expr inner = f;
  if (absolute) inner.root = f.nodes[f.root].a;
  auto g = [&](double x) {
    Value v = evaluate(inner, {x}, budget);
    return is_real(v) ? v.real() : NAN;
  };
  double g0 = g(0), g1 = g(1), g2 = g(2), g3 = g(-1.7);
  double slope = g1 - g0;
  if (!std::isfinite(g0) || !std::isfinite(slope) || slope == 0) return std::nullopt;
  auto close = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)}); };
  if (!close(g2 - g1, slope) || !close(g3, g0 - 1.7 * slope)) return std::nullopt;  // not linear
  // g(x) = slope * x + g0 ranges over a set T; the answer is {x : g(x) in T}.
  RealSet target;
  const bool strict = sign == "<" || sign == ">", below = sign == "<" || sign == "\\leq";
  if (sign == "\\neq") {
    target = absolute ? complement(normalized({{-c, -c, true, true}, {c, c, true, true}})) : complement({{c, c, true, true}});
  } else if (!absolute) {
    target = below ? RealSet{{-kInf, c, false, !strict}} : RealSet{{c, kInf, !strict, false}};
  } else {  // |g| < c: g in (-c, c); |g| > c: g outside [-c, c]
    target = below ? normalized({{-c, c, !strict, !strict}}) : complement(normalized({{-c, c, strict, strict}}));
  }
  RealSet out;  // x = (y - g0) / slope, which reverses order when slope < 0
  for (const Interval& t : target) {
    double a = (t.lo - g0) / slope, b = (t.hi - g0) / slope;
    out.push_back(slope > 0 ? Interval{a, b, t.lo_closed, t.hi_closed} : Interval{b, a, t.hi_closed, t.lo_closed});
  }
  return normalized(std::move(out));
}

const char* flipped(std::string_view sign) {
  if (sign == "<") return ">";
  if (sign == ">") return "<";
  if (sign == "\\leq") return "\\geq";
  if (sign == "\\geq") return "\\leq";
  return "\\neq";
}

// "a < x", "x \geq 3", "-1 < x \leq 3", "|x-1| < 2", "2x + 1 > 5": every relation between a side
// with the variable and a constant side, intersected.
std::optional<RealSet> parse_inequality(std::string_view t, const EquivOptions& opt, Budget& budget) {
  std::vector<Relation> rel = relations(t);
  if (rel.empty() || rel.size() > 2) return std::nullopt;
  std::vector<std::string_view> sides;
  size_t start = 0;
  for (const Relation& r : rel) {
    sides.push_back(t.substr(start, r.at - start));
    start = r.at + sign_length(r, t);
  }
  sides.push_back(t.substr(start));
  std::vector<std::optional<Expr>> parsed;
  std::string variable;
  for (std::string_view side : sides) {
    budget.spend(static_cast<long>(side.size()) + 1);
    parsed.push_back(parse_expression(side, opt.max_depth));
    if (!parsed.back() || parsed.back()->vars.size() > 1) return std::nullopt;
    if (parsed.back()->vars.size() == 1) {
      if (!variable.empty() && variable != parsed.back()->vars[0]) return std::nullopt;
      variable = parsed.back()->vars[0];
    }
  }
  if (variable.empty()) return std::nullopt;
  RealSet result = everything();
  for (size_t k = 0; k < rel.size(); ++k) {
    const Expr &left = *parsed[k], &right = *parsed[k + 1];
    if (left.vars.empty() == right.vars.empty()) return std::nullopt;  // one side must be constant
    const bool var_left = !left.vars.empty();
    Value c = evaluate(var_left ? right : left, {}, budget);
    if (!is_real(c) || !std::isfinite(c.real())) return std::nullopt;
    auto s = solve(var_left ? left : right, var_left ? rel[k].sign : flipped(rel[k].sign), c.real(), budget);
    if (!s) return std::nullopt;
    result = intersect(result, *s);
  }
  return result;
}

std::optional<RealSet> parse(std::string_view t, int depth, const EquivOptions& opt, Budget& budget);

// Parts joined by `sep`, each a set, united (or intersected).
std::optional<RealSet> combine(const std::vector<std::string_view>& parts, bool unite_parts, int depth,
                               const EquivOptions& opt, Budget& budget) {
  RealSet out = unite_parts ? RealSet{} : everything();
  for (std::string_view part : parts) {
    auto s = parse(part, depth + 1, opt, budget);
    if (!s) return std::nullopt;
    out = unite_parts ? unite(out, *s) : intersect(out, *s);
  }
  return out;
}

std::optional<RealSet> parse(std::string_view t, int depth, const EquivOptions& opt, Budget& budget) {
  t = trim(t);
  budget.spend(1);
  if (t.empty() || depth > 8) return std::nullopt;
  if (size_t v = variable_end(t, 0); v != npos && t.compare(v, 3, "\\in") == 0 && !(v + 3 < t.size() && is_alpha(t[v + 3])))
    return parse(t.substr(v + 3), depth + 1, opt, budget);  // "x \in S"
  if (t == "\\emptyset" || t == "\\{\\}" || t == "\\varnothing" || iequal(t, "nosolution") || iequal(t, "nosolutions") ||
      iequal(t, "norealsolutions") || iequal(t, "norealsolution"))
    return RealSet{};
  if (t == "\\mathbb{R}" || t == "\\mathbb R" || t == "\\R" || iequal(t, "allrealnumbers") || iequal(t, "allreals"))
    return everything();
  for (std::string_view sep : {"\\cup", ";"})
    if (auto parts = split_top(t, sep); parts.size() > 1) return combine(parts, true, depth, opt, budget);
  for (std::string_view sep : {"\\setminus", "\\backslash"})
    if (auto parts = split_top(t, sep); parts.size() == 2) {
      auto a = parse(parts[0], depth + 1, opt, budget), b = parse(parts[1], depth + 1, opt, budget);
      if (!a || !b) return std::nullopt;
      return intersect(*a, complement(*b));
    }
  if (t.compare(0, 11, "\\mathbb{R}-") == 0) {  // \mathbb{R}-\{0\}
    auto b = parse(t.substr(11), depth + 1, opt, budget);
    if (!b) return std::nullopt;
    return complement(*b);
  }
  if (t.size() >= 4 && t.compare(0, 2, "\\{") == 0 && t.compare(t.size() - 2, 2, "\\}") == 0 && wrapped(t, 1)) {
    std::string_view inner = trim(t.substr(2, t.size() - 4));
    for (std::string_view bar : {"\\mid", "|", ":"}) {  // set-builder: {x | condition}
      auto halves = split_top(inner, bar);
      if (halves.size() != 2) continue;
      std::string_view head = trim(halves[0]);
      size_t v = variable_end(head, 0);
      if (v == npos) return std::nullopt;
      auto condition = parse(halves[1], depth + 1, opt, budget);
      if (!condition) return std::nullopt;
      if (v < head.size()) {  // {x \in \mathbb{R} | ...}
        auto domain = parse(head, depth + 1, opt, budget);
        if (!domain) return std::nullopt;
        return intersect(*domain, *condition);
      }
      return condition;
    }
    RealSet points;  // a finite set of numbers
    for (std::string_view element : split_top(inner, ",")) {
      auto x = constant(element, opt, budget);
      if (!x || std::isinf(*x)) return std::nullopt;
      points.push_back({*x, *x, true, true});
    }
    return normalized(points);
  }
  if (t.size() >= 5 && (t[0] == '(' || t[0] == '[') && (t.back() == ')' || t.back() == ']') && wrapped(t, 0)) {
    auto ends = split_top(t.substr(1, t.size() - 2), ",");
    if (ends.size() == 2) {
      auto lo = constant(ends[0], opt, budget), hi = constant(ends[1], opt, budget);
      if (!lo || !hi || *lo > *hi) return std::nullopt;
      return normalized({{*lo, *hi, t[0] == '[', t.back() == ']'}});
    }
  }
  if (auto parts = split_top(t, ","); parts.size() > 1) {  // conditions: "x>1, x<3" (and), unless that is empty
    for (std::string_view part : parts)
      if (!has_relation(part)) return std::nullopt;
    auto both = combine(parts, false, depth, opt, budget);
    if (both && both->empty()) return combine(parts, true, depth, opt, budget);  // "x<-1, x>2" means or
    return both;
  }
  if (has_relation(t)) return parse_inequality(t, opt, budget);
  return std::nullopt;
}

}  // namespace

bool has_relation(std::string_view t) {
  return t.find('<') != npos || t.find('>') != npos || t.find("\\leq") != npos || t.find("\\geq") != npos ||
         t.find("\\neq") != npos || t.find("\\approx") != npos;
}

bool names_real_set(std::string_view t) {
  if (has_relation(t) || t.find("\\mathbb") != npos || t.find("\\infty") != npos || t.find("\\setminus") != npos ||
      t.find("\\cup") != npos || t.find('[') != npos || t.find(']') != npos || t == "\\emptyset")
    return true;
  return t.compare(0, 2, "\\{") == 0 && (t.find("\\mid") != npos || t.find('|') != npos || t.find(':') != npos);
}

std::optional<RealSet> parse_real_set(std::string_view t, const EquivOptions& opt, Budget& budget) {
  if (t.find("\\approx") != npos) return std::nullopt;
  return parse(t, 0, opt, budget);
}

bool real_sets_equal(const RealSet& a, const RealSet& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_value(a[i].lo, b[i].lo) || !same_value(a[i].hi, b[i].hi) || a[i].lo_closed != b[i].lo_closed ||
        a[i].hi_closed != b[i].hi_closed)
      return false;
  return true;
}

}  // namespace ovr::reward
