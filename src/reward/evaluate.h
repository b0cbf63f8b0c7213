// Values of parsed expressions, under a work budget, and the tolerance policy that says when two
// numbers are the same answer (reward.h, rule 4).
#pragma once
#include <complex>
#include <optional>
#include <string_view>
#include <vector>

#include "reward/latex_expr.h"
#include "reward/reward.h"

namespace ovr::reward {

using Value = std::complex<double>;

struct OutOfWork {};

// Shared by every evaluation of one comparison, so a list of many elements cannot multiply the
// budget. spend() throws OutOfWork when it runs out.
struct Budget {
  long left;
  void spend(long n) {
    left -= n;
    if (left < 0) throw OutOfWork();
  }
};

// The value of e with its variables set to `vars` (in e.vars order). Real operands are computed in
// real arithmetic (odd roots of negatives are real: \sqrt[3]{-8} = -2); complex arithmetic starts
// where a real result does not exist (\sqrt{-4} = 2i, \ln(-1) = i\pi). NaN when a finite operation
// overflows or underflows to 0 (2^{5000}, 10^{-10000}): such a value is not comparable.
Value evaluate(const Expr& e, const std::vector<double>& vars, Budget& budget);

// Values for e's variables at evaluation point `point`: pseudo-random but fixed per name, the same
// for both answers, in [0.3, 2.5] with alternating sign (odd points probe negative inputs too).
std::vector<double> values_at(const Expr& e, int point);

bool is_real(Value v);
bool is_finite(Value v);

// Two exact forms computed in doubles: equal up to rounding (relative 1e-9, absolute 1e-12 near 0;
// integers below 2^53 exactly).
bool same_value(Value a, Value b);

// How a number is written, for the tolerance policy: "-0.3330" is a decimal with 4 places and 3
// significant digits; "3", "\frac13" and "\sqrt2" are exact forms.
struct Literal {
  bool decimal = false;
  int places = 0, significant = 0;
};
Literal literal_of(std::string_view canonical_text);

// An exact rational value num/den (den > 0, reduced), for expressions built from literals with
// + - * /, integer powers, perfect roots, factorials and binomials: such answers compare exactly,
// however many digits agree (a continued fraction of depth 30 is not its depth-29 neighbour).
struct Rational {
  __int128 num = 0, den = 1;
  bool operator==(const Rational& o) const { return num == o.num && den == o.den; }
};
// nullopt when e has variables, other operations, or a value beyond 128-bit integers.
std::optional<Rational> exact_value(const Expr& e, Budget& budget);

// Whether e equals the rational q, decided exactly by isolating e's one inexact part: an exact
// operand of + - * / is moved to q's side, a root is undone by raising q to its index
// (\sqrt{A} = q iff q >= 0 and A = q^2). nullopt when that does not reach an exact comparison.
// So \frac{1+\sqrt5}{2} is not a continued fraction of depth 30, however many digits agree.
std::optional<bool> equals_rational(const Expr& e, const Rational& q, Budget& budget);

// A number as the policy sees it: its value, how it is written, its exact value if it has one.
struct Number {
  Value value;
  Literal literal;
  std::optional<Rational> exact;
};

// The tolerance policy (reward.h, rule 4) for a predicted and a reference number.
bool numbers_equal(const Number& predicted, const Number& reference, const EquivOptions& opt);

}  // namespace ovr::reward
