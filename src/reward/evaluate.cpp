// Evaluation of parsed answers and the tolerance policy.
#include "reward/evaluate.h"

#include <cmath>
#include <cstdint>

#include "reward/text_util.h"

namespace ovr::reward {
namespace {

// One function for real and complex arguments (the std:: overloads of both).
template <class T>
T apply_function(int fn, T x) {
  switch (fn) {
    case kSin: return std::sin(x);
    case kCos: return std::cos(x);
    case kTan: return std::tan(x);
    case kCot: return T(1) / std::tan(x);
    case kSec: return T(1) / std::cos(x);
    case kCsc: return T(1) / std::sin(x);
    case kArcsin: return std::asin(x);
    case kArccos: return std::acos(x);
    case kArctan: return std::atan(x);
    case kSinh: return std::sinh(x);
    case kCosh: return std::cosh(x);
    case kTanh: return std::tanh(x);
    case kLn: return std::log(x);
    case kLog: return std::log10(x);  // \log without a base: base 10, as in competition problems
    default: return std::exp(x);
  }
}

// Whether the real function has a real value at x (else the complex one is used).
bool real_domain(int fn, double x) {
  if (fn == kArcsin || fn == kArccos) return std::fabs(x) <= 1;
  if (fn == kLn || fn == kLog) return x > 0;
  return true;
}

// The operation of one inner node on real operands; NaN where the result is not real.
double apply_real(const Node& n, double x, double y) {
  switch (n.op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return x / y;
    case '^': return std::pow(x, y);
    case '~': return -x;
    case '|': return std::fabs(x);
    case 'f': return apply_function(n.fn, x);
    case 'L': return std::log(x) / std::log(y);
    case 'C':  // binomial coefficient: integer k; n any real for small k (\binom{n}{2} = n(n-1)/2)
      if (y != std::floor(y) || y < 0) return y != std::floor(y) ? NAN : 0;
      if (y <= 60) {
        double c = 1;
        for (int i = 0; i < static_cast<int>(y); ++i) c = c * (x - i) / (i + 1);
        return x == std::floor(x) ? std::round(c) : c;
      }
      if (x != std::floor(x) || x > 1e6) return NAN;
      if (y > x) return 0;
      return std::round(std::exp(std::lgamma(x + 1) - std::lgamma(y + 1) - std::lgamma(x - y + 1)));
    case '!':
      if (x < 0 || x != std::floor(x)) return NAN;
      return x > 170 ? HUGE_VAL : std::tgamma(x + 1);
    case 'r':
      if (x < 0 && y == std::floor(y) && std::fmod(y, 2) != 0) return -std::pow(-x, 1 / y);  // odd roots
      return std::pow(x, 1 / y);
  }
  return NAN;
}

// Whether a real operation has no real value but a complex one: even roots and fractional powers of
// negatives, logarithms of negatives, arcsin/arccos beyond [-1, 1].
bool needs_complex(const Node& n, double x, double y) {
  switch (n.op) {
    case '^': return x < 0 && y != std::floor(y) && std::isfinite(y);
    case 'r': return x < 0 && !(y == std::floor(y) && std::fmod(y, 2) != 0);
    case 'f': return !real_domain(n.fn, x) && std::isfinite(x);
    case 'L': return (x < 0 || y < 0) && x != 0 && y > 0 && y != 1;
  }
  return false;
}

Value apply_complex(const Node& n, Value x, Value y) {
  switch (n.op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return y == 0.0 ? Value(NAN) : x / y;
    case '^': return std::pow(x, y);
    case '~': return -x;
    case '|': return std::abs(x);
    case 'f': return apply_function(n.fn, x);
    case 'L': return std::log(x) / std::log(y);
    case 'r': return y == 2.0 ? std::sqrt(x) : std::pow(x, 1.0 / y);
  }
  return NAN;  // factorials and binomials of complex numbers: not answers we grade
}

Value eval(const Expr& e, int i, const std::vector<double>& vars, Budget& budget) {
  budget.spend(1);
  const Node& n = e.nodes[i];
  if (n.op == 'n') return n.value;
  if (n.op == 'v') return vars[n.a];
  Value x = eval(e, n.a, vars, budget), y = n.b >= 0 ? eval(e, n.b, vars, budget) : 0.0;
  Value r;
  if (x.imag() == 0 && y.imag() == 0 && !needs_complex(n, x.real(), y.real())) {
    r = apply_real(n, x.real(), y.real());
  } else {
    r = apply_complex(n, x, y);
  }
  // Finite operands that overflow (2^{2000}, 1/0, 10^6!) give no comparable value, and above all
  // not \infty; nor does a product that underflows to 0 (10^{-10000} is not 0).
  if (is_finite(x) && is_finite(y)) {
    if (!is_finite(r)) return NAN;
    bool underflow = r == 0.0 && x != 0.0 && (n.op == '*' ? y != 0.0 : n.op == '/' || n.op == '^');
    if (underflow) return NAN;
  }
  return r;
}

// ---- exact rationals ---------------------------------------------------------------------------

using i128 = __int128;
struct Overflow {};

i128 checked_mul(i128 a, i128 b) {
  i128 r;
  if (__builtin_mul_overflow(a, b, &r)) throw Overflow();
  return r;
}
i128 checked_add(i128 a, i128 b) {
  i128 r;
  if (__builtin_add_overflow(a, b, &r)) throw Overflow();
  return r;
}
i128 gcd(i128 a, i128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    i128 t = a % b;
    a = b, b = t;
  }
  return a;
}
Rational make(i128 num, i128 den) {
  if (den == 0) throw Overflow();  // division by zero: no value
  if (den < 0) num = -num, den = -den;
  i128 g = gcd(num, den);
  if (g > 1) num /= g, den /= g;
  return {num, den};
}
Rational add(Rational a, Rational b) {
  return make(checked_add(checked_mul(a.num, b.den), checked_mul(b.num, a.den)), checked_mul(a.den, b.den));
}
Rational mul(Rational a, Rational b) { return make(checked_mul(a.num, b.num), checked_mul(a.den, b.den)); }
Rational power(Rational a, i128 e) {
  if (e < 0) return power(make(a.den, a.num), -e);
  if (e > 256) throw Overflow();
  Rational r{1, 1};
  for (; e > 0; --e) r = mul(r, a);
  return r;
}
// The k-th root of a non-negative integer when it is an integer.
std::optional<i128> integer_root(i128 x, i128 k) {
  if (x < 0 || k < 1 || k > 128) return std::nullopt;
  i128 guess = static_cast<i128>(std::llround(std::pow(static_cast<double>(x), 1.0 / static_cast<double>(k))));
  for (i128 r = guess > 0 ? guess - 1 : 0; r <= guess + 1; ++r) {
    try {
      if (power({r, 1}, k).num == x) return r;
    } catch (const Overflow&) {
    }
  }
  return std::nullopt;
}
bool is_integer(const Rational& r) { return r.den == 1; }

Rational exact(const Expr& e, int i, Budget& budget) {
  budget.spend(1);
  const Node& n = e.nodes[i];
  if (n.op == 'n') {
    if (n.den != 0) return make(n.num, n.den);
    double v = n.value.real();  // integers the parser made (\sqrt's index 2)
    if (n.value.imag() == 0 && v == std::floor(v) && std::fabs(v) < 9e15) return {static_cast<i128>(v), 1};
    throw Overflow();
  }
  if (n.op == 'v' || n.op == 'f' || n.op == 'L') throw Overflow();
  Rational x = exact(e, n.a, budget);
  Rational y = n.b >= 0 ? exact(e, n.b, budget) : Rational{0, 1};
  switch (n.op) {
    case '+': return add(x, y);
    case '-': return add(x, {-y.num, y.den});
    case '*': return mul(x, y);
    case '/': return mul(x, make(y.den, y.num));
    case '~': return {-x.num, x.den};
    case '|': return {x.num < 0 ? -x.num : x.num, x.den};
    case '^':
      if (!is_integer(y) || (x.num == 0 && y.num < 0)) throw Overflow();
      return power(x, y.num);
    case 'r': {
      if (!is_integer(y) || y.num < 1) throw Overflow();
      bool negative = x.num < 0;
      if (negative && y.num % 2 == 0) throw Overflow();  // an even root of a negative: complex
      auto num = integer_root(negative ? -x.num : x.num, y.num), den = integer_root(x.den, y.num);
      if (!num || !den) throw Overflow();
      return make(negative ? -*num : *num, *den);
    }
    case '!': {
      if (!is_integer(x) || x.num < 0 || x.num > 33) throw Overflow();
      i128 f = 1;
      for (i128 k = 2; k <= x.num; ++k) f = checked_mul(f, k);
      return {f, 1};
    }
    case 'C': {
      if (!is_integer(y) || y.num < 0 || y.num > 200) throw Overflow();
      Rational c{1, 1};
      for (i128 k = 0; k < y.num; ++k) c = mul(c, make(checked_add(checked_mul(x.num, 1), -checked_mul(k, x.den)), checked_mul(x.den, k + 1)));
      return c;
    }
  }
  throw Overflow();
}

// Whether a rational has a finite decimal expansion: its denominator has no prime but 2 and 5.
bool terminates(Rational r) {
  i128 d = r.den;
  while (d % 2 == 0) d /= 2;
  while (d % 5 == 0) d /= 5;
  return d == 1;
}

bool near_integer(double x) { return std::fabs(x - std::round(x)) <= 1e-9 * std::max(1.0, std::fabs(x)); }

// Whether x has a finite decimal expansion (1/4, 7/8; not 1/3, sqrt 2), judged in doubles.
bool terminates(double x) {
  double scaled = std::fabs(x);
  for (int places = 0; places <= 15 && scaled < 1e9; ++places, scaled *= 10)
    if (std::fabs(scaled - std::round(scaled)) <= 1e-6) return true;
  return false;
}

double round_to(double x, int places) {
  double scale = std::pow(10.0, places);
  return std::round(x * scale) / scale;
}

}  // namespace

bool is_real(Value v) { return std::fabs(v.imag()) <= 1e-12 * std::max(1.0, std::abs(v)); }
bool is_finite(Value v) { return std::isfinite(v.real()) && std::isfinite(v.imag()); }

Value evaluate(const Expr& e, const std::vector<double>& vars, Budget& budget) {
  return eval(e, e.root, vars, budget);
}

std::vector<double> values_at(const Expr& e, int point) {
  std::vector<double> v;
  for (const auto& name : e.vars) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the name, mixed with the point (splitmix64)
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h += 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(point + 1);
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    v.push_back((point % 2 ? -1 : 1) * (0.3 + 2.2 * u));
  }
  return v;
}

bool same_value(Value a, Value b) {
  if (std::isnan(a.real()) || std::isnan(a.imag()) || std::isnan(b.real()) || std::isnan(b.imag())) return false;
  if (!is_finite(a) || !is_finite(b)) return a == b;
  if (is_real(a) && is_real(b) && near_integer(a.real()) && near_integer(b.real()) && std::fabs(a.real()) < 9e15 &&
      std::fabs(b.real()) < 9e15)
    return std::round(a.real()) == std::round(b.real());  // a count of 100000 is not 100001
  double diff = std::abs(a - b);
  return diff <= 1e-9 * std::max(std::abs(a), std::abs(b)) || diff <= 1e-12;
}

Literal literal_of(std::string_view t) {
  Literal l;
  size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
  size_t digits_before = 0, dot = npos;
  for (size_t k = i; k < t.size(); ++k) {
    if (is_digit(t[k])) continue;
    if (t[k] == '.' && dot == npos) {
      dot = k;
      continue;
    }
    return {};
  }
  if (dot == npos || dot + 1 >= t.size()) return {};
  digits_before = dot - i;
  l.decimal = true;
  l.places = static_cast<int>(t.size() - dot - 1);
  std::string digits = std::string(t.substr(i, digits_before)) + std::string(t.substr(dot + 1));
  size_t first = digits.find_first_not_of('0');
  l.significant = first == std::string::npos ? 1 : static_cast<int>(digits.size() - first);
  return l;
}

std::optional<Rational> exact_value(const Expr& e, Budget& budget) {
  if (!e.vars.empty() || e.imaginary) return std::nullopt;
  try {
    return exact(e, e.root, budget);
  } catch (const Overflow&) {
    return std::nullopt;
  }
}

namespace {

std::optional<Rational> try_exact(const Expr& e, int node, Budget& budget) {
  try {
    return exact(e, node, budget);
  } catch (const Overflow&) {
    return std::nullopt;
  }
}

std::optional<bool> equals(const Expr& e, int i, Rational q, Budget& budget, int depth) {
  budget.spend(1);
  if (depth > 4096) return std::nullopt;
  if (auto v = try_exact(e, i, budget)) return *v == q;
  const Node& n = e.nodes[i];
  try {
    if (n.op == '~') return equals(e, n.a, {-q.num, q.den}, budget, depth + 1);
    if (n.op == '+' || n.op == '-' || n.op == '*' || n.op == '/') {
      auto a = try_exact(e, n.a, budget), b = try_exact(e, n.b, budget);
      if (a.has_value() == b.has_value()) return std::nullopt;  // both inexact: not one part to isolate
      int rest = a ? n.b : n.a;
      const Rational k = a ? *a : *b;
      switch (n.op) {
        case '+': return equals(e, rest, add(q, {-k.num, k.den}), budget, depth + 1);           // A + k = q
        case '-': return a ? equals(e, rest, add(k, {-q.num, q.den}), budget, depth + 1)        // k - B = q
                           : equals(e, rest, add(q, k), budget, depth + 1);                      // A - k = q
        case '*': return k.num == 0 ? std::optional<bool>(q.num == 0) : equals(e, rest, mul(q, make(k.den, k.num)), budget, depth + 1);
        case '/':
          if (b) return k.num == 0 ? std::nullopt : equals(e, rest, mul(q, k), budget, depth + 1);  // A / k = q
          if (q.num == 0) return k.num == 0 ? std::nullopt : std::optional<bool>(false);          // k / B = 0
          return equals(e, rest, mul(k, make(q.den, q.num)), budget, depth + 1);                   // k / B = q
      }
    }
    if (n.op == 'r') {
      auto k = try_exact(e, n.b, budget);
      if (!k || !is_integer(*k) || k->num < 1 || k->num > 64) return std::nullopt;
      if (q.num < 0 && k->num % 2 == 0) return false;  // a real even root is never negative
      return equals(e, n.a, power(q, k->num), budget, depth + 1);
    }
  } catch (const Overflow&) {
  }
  return std::nullopt;
}

}  // namespace

std::optional<bool> equals_rational(const Expr& e, const Rational& q, Budget& budget) {
  if (!e.vars.empty() || e.imaginary) return std::nullopt;
  return equals(e, e.root, q, budget, 0);
}

bool numbers_equal(const Number& p, const Number& r, const EquivOptions& opt) {
  const Value predicted = p.value, reference = r.value;
  const Literal &lp = p.literal, &lr = r.literal;
  if (!is_finite(predicted) || !is_finite(reference)) return same_value(predicted, reference);
  if (opt.decimal_places >= 0 && is_real(predicted) && is_real(reference))  // a stated precision
    return std::fabs(round_to(predicted.real(), opt.decimal_places) - round_to(reference.real(), opt.decimal_places)) <=
           1e-9 * std::max(1.0, std::fabs(reference.real()));
  const bool exact = p.exact && r.exact;
  if (lp.decimal == lr.decimal) {  // two exact forms, or two decimals (1.0000001 != 1)
    if (exact) return *p.exact == *r.exact;
    return lp.decimal ? predicted == reference : same_value(predicted, reference);
  }
  const Number& d = lp.decimal ? p : r;
  const Number& v = lp.decimal ? r : p;
  if (!is_real(v.value)) return false;
  if (v.exact ? terminates(*v.exact) : terminates(v.value.real()))  // 0.25 = 1/4, but 2.00001 != 2
    return exact ? *d.exact == *v.exact : same_value(d.value, v.value);
  // A non-terminating value: the decimal must be its correct rounding with enough digits, on
  // either side (a shorter reference decimal needs a stated precision: decimal_places).
  if (d.literal.significant < opt.min_significant_digits) return false;
  return std::fabs(d.value.real() - v.value.real()) <= 0.5 * std::pow(10.0, -d.literal.places) * (1 + 1e-9);
}

}  // namespace ovr::reward
