// A LaTeX expression parsed into a flat tree: what a scalar answer means as a value.
#pragma once
#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ovr::reward {

// One node. op: 'n' number, 'v' variable, '+' '-' '*' '/' '^', '~' negation, '!' factorial, '|'
// absolute value (modulus), 'r' root (b = index), 'f' function (fn), 'L' logarithm to base b,
// 'C' binomial coefficient.
struct Node {
  char op;
  std::complex<double> value = 0;
  int a = -1, b = -1;
  int fn = 0;
  bool integer_literal = false;  // written as digits only: "3" in 3\frac{1}{2} starts a mixed number
  int64_t num = 0, den = 0;      // a literal's exact value num/den (den 0: none, e.g. pi or 25 digits)
};

struct Expr {
  std::vector<Node> nodes;
  std::vector<std::string> vars;  // free variable names; node 'v' holds the index in a
  int root = -1;
  bool imaginary = false;  // the unit i appears: values are compared as complex numbers
  bool degrees = false;    // a degree sign appears (converted to radians where it stands)
  double degree_literal = 0;  // when the whole answer is "N^\circ": N (so 90^\circ can equal 90)
  bool is_degree_literal = false;
};

// Functions by name; Fn and kFunctions list them in the same order.
enum Fn { kSin, kCos, kTan, kCot, kSec, kCsc, kArcsin, kArccos, kArctan, kSinh, kCosh, kTanh, kLn, kLog, kExp };

// Parses a normalised answer (normalize.h): sums, products (explicit and implicit), powers
// (right-associative), unary minus, factorials, |x|, \frac, \sqrt[n]{}, \binom / \choose,
// functions, \pi, e, i, \infty, repeating decimals (0.1\overline{6}) and degree signs (x^\circ, as
// radians). Anything else (relations, matrices, \pm) gives nullopt. Nesting deeper than max_depth,
// or more nodes than a bound linear in the length, gives nullopt too.
std::optional<Expr> parse_expression(std::string_view text, int max_depth);

bool is_greek_letter(std::string_view name);

}  // namespace ovr::reward
