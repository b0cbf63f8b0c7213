// Whether two answers are the same (reward.h, rules 3 and 4), and score_response.
#include <algorithm>
#include <exception>

#include "reward/evaluate.h"
#include "reward/normalize.h"
#include "reward/real_set.h"
#include "reward/reward.h"
#include "reward/structure.h"
#include "reward/text_util.h"

namespace ovr::reward {
namespace {

// "Yes", "no", "True": words compare without case; two letters only for "no" (a pair of letters
// is more often a product of variables).
bool same_word(std::string_view a, std::string_view b) {
  bool word = a.size() >= 2 && std::all_of(a.begin(), a.end(), [](char c) { return is_alpha(c); });
  return word && iequal(a, b) && (a.size() >= 3 || iequal(a, "no"));
}

// "1011_2": digits in a stated base. Equal to the same digits with the base written, or without
// it (the question fixed the base); never to the number's decimal value.
std::optional<std::pair<std::string_view, std::string_view>> based_number(std::string_view t) {
  size_t bar = t.find('_');
  std::string_view digits = t.substr(0, bar), base = bar == npos ? std::string_view() : t.substr(bar + 1);
  if (digits.size() > 2 && digits.front() == '(' && digits.back() == ')') digits = digits.substr(1, digits.size() - 2);
  auto all = [](std::string_view s, bool letters) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return is_digit(c) || (letters && c >= 'A' && c <= 'Z'); });
  };
  if (!all(digits, true) || !is_digit(digits[0]) || (bar != npos && !all(base, false))) return std::nullopt;
  return std::make_pair(digits, base);
}

// Equations are the same when lhs - rhs of one is a constant non-zero multiple of the other's at
// every point: "x+y=1" = "y=1-x" = "2x+2y=2".
bool equations_equal(std::string_view a, std::string_view b, const EquivOptions& opt, Budget& budget) {
  auto difference = [&](std::string_view s) -> std::optional<Expr> {
    auto sides = split_top(s, "=");
    if (sides.size() != 2 || sides[0].empty() || sides[1].empty() || has_relation(s)) return std::nullopt;
    budget.spend(static_cast<long>(s.size()));
    return parse_expression("(" + std::string(sides[0]) + ")-(" + std::string(sides[1]) + ")", opt.max_depth);
  };
  auto da = difference(a), db = difference(b);
  if (!da || !db || (da->vars.empty() && db->vars.empty())) return false;
  int agree = 0;
  Value ratio = 0;
  for (int p = 0; p < opt.points; ++p) {
    Value x = evaluate(*da, values_at(*da, p), budget), y = evaluate(*db, values_at(*db, p), budget);
    if (!is_finite(x) || !is_finite(y) || (std::abs(x) < 1e-12 && std::abs(y) < 1e-12)) continue;
    if (std::abs(y) < 1e-12 || std::abs(x) < 1e-12) return false;
    if (agree++ == 0) ratio = x / y;
    else if (!same_value(x / y, ratio)) return false;
  }
  return agree >= std::min(3, opt.points);
}

// Expressions with free variables: equal at every evaluation point where both are defined and
// real (a point outside one form's real domain, such as ln x at x < 0, says nothing), and at
// least 3 such points.
bool functions_equal(const Expr& a, const Expr& b, const EquivOptions& opt, Budget& budget) {
  const bool complex_answer = a.imaginary || b.imaginary;
  int agree = 0;
  for (int p = 0; p < opt.points; ++p) {
    Value x = evaluate(a, values_at(a, p), budget), y = evaluate(b, values_at(b, p), budget);
    if (!is_finite(x) || !is_finite(y)) continue;
    if (!complex_answer && (!is_real(x) || !is_real(y))) continue;
    if (!same_value(x, y)) return false;
    ++agree;
  }
  return agree >= std::min(3, opt.points);
}

// a is the predicted scalar, b the reference.
bool scalars_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  if (a.text == b.text) return true;
  if (a.text.empty() || b.text.empty()) return false;
  auto ca = choice_letter(a.text), cb = choice_letter(b.text);
  if (ca || cb) {  // a letter only ever equals the same letter, never a value
    if (ca && cb) return *ca == *cb;
    return ca ? leading_choice(b.text) == ca : leading_choice(a.text) == cb;
  }
  if (same_word(a.text, b.text)) return true;
  auto na = based_number(a.text), nb = based_number(b.text);
  if (na && nb && (!na->second.empty() || !nb->second.empty()))
    return na->first == nb->first && (na->second.empty() || nb->second.empty() || na->second == nb->second);
  if (a.text.find('=') != npos || b.text.find('=') != npos) return equations_equal(a.raw, b.raw, opt, budget);
  if (!a.expr || !b.expr) return false;
  if (!a.expr->vars.empty() || !b.expr->vars.empty()) return functions_equal(*a.expr, *b.expr, opt, budget);
  const Number x{evaluate(*a.expr, {}, budget), literal_of(a.text), exact_value(*a.expr, budget)};
  const Number y{evaluate(*b.expr, {}, budget), literal_of(b.text), exact_value(*b.expr, budget)};
  if (!x.literal.decimal && !y.literal.decimal && x.exact.has_value() != y.exact.has_value() && opt.decimal_places < 0) {
    auto same = x.exact ? equals_rational(*b.expr, *x.exact, budget) : equals_rational(*a.expr, *y.exact, budget);
    if (same) return *same;  // decided exactly, beyond what doubles can tell apart
  }
  if (numbers_equal(x, y, opt)) return true;
  // "90^\circ" against 90: the angle as written in degrees.
  if (a.expr->is_degree_literal && !b.expr->degrees) return numbers_equal({a.expr->degree_literal, {}, {}}, y, opt);
  if (b.expr->is_degree_literal && !a.expr->degrees) return numbers_equal(x, {b.expr->degree_literal, {}, {}}, opt);
  return false;
}

bool items_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget);

// Every element of a equals one of b and every one of b one of a: sets ignore order and repeats.
bool sets_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  auto covered = [&](const Item& x, const Item& y, bool x_predicted) {
    for (const Item& u : x.items) {
      bool found = false;
      for (size_t j = 0; j < y.items.size() && !found; ++j)
        found = x_predicted ? items_equal(u, y.items[j], opt, budget) : items_equal(y.items[j], u, opt, budget);
      if (!found) return false;
    }
    return true;
  };
  return covered(a, b, true) && covered(b, a, false);
}

// A tuple and a matrix of one row or one column (a vector written either way): entries in order.
bool vector_and_tuple(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  const Item& m = a.kind == Item::kMatrix ? a : b;
  const Item& t = a.kind == Item::kMatrix ? b : a;
  if (t.kind != Item::kTuple || t.open != '(' || t.close != ')') return false;
  if (!(m.rows == 1 || m.cols == 1) || m.items.size() != t.items.size()) return false;
  for (size_t i = 0; i < m.items.size(); ++i)
    if (!items_equal(a.items[i], b.items[i], opt, budget)) return false;
  return true;
}

bool items_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  budget.spend(1);  // a long list against another is quadratic: count the pairs too
  if (a.kind == Item::kScalar && b.kind == Item::kScalar) return scalars_equal(a, b, opt, budget);
  if ((a.kind == Item::kMatrix) != (b.kind == Item::kMatrix)) return vector_and_tuple(a, b, opt, budget);
  if (a.kind == Item::kMatrix && (a.rows != b.rows || a.cols != b.cols)) return false;
  if ((a.kind == Item::kSet && (b.kind == Item::kSet || b.kind == Item::kList)) || (b.kind == Item::kSet && a.kind == Item::kList))
    return sets_equal(a, b, opt, budget);
  if (a.items.size() != b.items.size()) return false;
  // Bare lists of roots and unions of intervals: any order, each element once.
  if ((a.kind == Item::kList && b.kind == Item::kList) || (a.kind == Item::kUnion && b.kind == Item::kUnion)) {
    std::vector<char> used(b.items.size(), 0);
    for (const Item& x : a.items) {
      bool found = false;
      for (size_t j = 0; j < b.items.size() && !found; ++j)
        if (!used[j] && items_equal(x, b.items[j], opt, budget)) used[j] = found = true;
      if (!found) return false;
    }
    return true;
  }
  if (a.kind != b.kind || a.open != b.open || a.close != b.close) return false;  // "[1,3)" != "[1,3]"
  for (size_t i = 0; i < a.items.size(); ++i)  // tuples, intervals, matrices: in order
    if (!items_equal(a.items[i], b.items[i], opt, budget)) return false;
  return true;
}

bool has_box(std::string_view s) { return s.find("\\boxed") != npos || s.find("\\fbox") != npos; }

}  // namespace

bool answers_equivalent(std::string_view predicted, std::string_view reference, const EquivOptions& opt) {
  predicted = trim(predicted), reference = trim(reference);
  if (predicted.size() > opt.max_length || reference.size() > opt.max_length) return predicted == reference;
  try {
    Budget budget{opt.max_work};
    const std::string pa = clean(predicted), pb = clean(reference);
    const std::string ta = canonical(pa), tb = canonical(pb);
    if (ta.empty()) return false;
    if (names_real_set(ta) || names_real_set(tb)) {  // inequalities, intervals, set-builder, \mathbb{R}
      auto sa = parse_real_set(ta, opt, budget), sb = parse_real_set(tb, opt, budget);
      if (sa && sb) return real_sets_equal(*sa, *sb);
    }
    Item a = build_item(pa, 0, opt, budget), b = build_item(pb, 0, opt, budget);
    return items_equal(a, b, opt, budget);
  } catch (const OutOfWork&) {
    return false;  // a hostile answer: wrong, not a stall
  } catch (const std::exception&) {
    return false;
  }
}

RewardResult score_response(std::string_view response, std::string_view reference, bool truncated,
                            const RewardOptions& opt) {
  RewardResult r;
  std::optional<std::string> answer = extract_boxed(response, opt.extract);
  if (answer) r.extracted = *answer;
  if (truncated) {
    r.reason = "truncated";
  } else if (!answer || trim(*answer).empty()) {
    r.reason = "no_answer";
  } else if (answer->size() > opt.equiv.max_length) {
    r.reason = "too_long";
  } else {
    std::optional<std::string> boxed_reference;
    if (has_box(reference)) boxed_reference = extract_boxed(reference);
    bool ok = answers_equivalent(*answer, boxed_reference ? *boxed_reference : reference, opt.equiv);
    r.reward = ok ? 1.0 : 0.0;
    r.reason = ok ? "correct" : "wrong";
  }
  return r;
}

}  // namespace ovr::reward
