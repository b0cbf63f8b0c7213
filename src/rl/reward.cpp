// The verifiable math reward: answer extraction, normalisation, and a small LaTeX evaluator that
// decides whether two answers are the same. The rules are in reward.h.
#include "rl/reward.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <vector>

namespace ovr::rl {
namespace {

constexpr size_t npos = std::string_view::npos;
constexpr double kPi = 3.14159265358979323846, kE = 2.71828182845904523536;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

template <size_t N>
bool is_one_of(std::string_view word, const char* const (&list)[N]) {
  for (const char* w : list)
    if (word == w) return true;
  return false;
}

// ---- extraction -------------------------------------------------------------------------------

// Start of the last "\name" in s that is the whole command name ("\boxed", not "\boxedfoo").
size_t last_command(std::string_view s, std::string_view name) {
  size_t end = s.size();
  while (true) {
    size_t p = s.rfind(name, end);
    if (p == npos) return npos;
    size_t after = p + name.size();
    if (after >= s.size() || !is_alpha(s[after])) return p;
    if (p == 0) return npos;
    end = p - 1;
  }
}

// The argument of a box command whose name ends at `pos`.
std::optional<std::string> box_argument(std::string_view s, size_t pos) {
  size_t j = pos;
  while (j < s.size() && is_space(s[j])) ++j;
  if (j >= s.size()) return std::nullopt;
  if (s[j] == '{') {
    int depth = 0;
    for (size_t k = j; k < s.size(); ++k) {
      if (s[k] == '\\') {  // \{ and \} are set braces, not grouping
        ++k;
        continue;
      }
      if (s[k] == '{') ++depth;
      if (s[k] == '}' && --depth == 0) return std::string(s.substr(j + 1, k - j - 1));
    }
    return std::nullopt;  // unbalanced: the response was cut off inside its answer
  }
  size_t k = j;  // "\boxed 5": up to the next whitespace or '$'
  while (k < s.size() && !is_space(s[k]) && s[k] != '$') ++k;
  return std::string(s.substr(j, k - j));
}

// ---- normalisation ----------------------------------------------------------------------------

// Commands that only wrap text or change the font: unwrapped, their argument kept.
const char* const kTextWrappers[] = {"text",   "textbf",  "textit",     "textrm", "textsf", "textnormal",
                                     "mathrm", "mathbf",  "mathit",     "mathsf", "mbox",   "hbox",
                                     "boldsymbol", "bm", "operatorname"};
// Commands that change nothing about the value: sizes, spacing, display style.
const char* const kDropped[] = {"left",  "right", "big",  "Big",   "bigg",  "Bigg",  "bigl",   "bigr",
                                "Bigl",  "Bigr",  "biggl", "biggr", "Biggl", "Biggr", "displaystyle",
                                "textstyle", "quad", "qquad", "limits", "nolimits", "circ", "degree"};
const char* const kGreek[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
                              "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho",
                              "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma",
                              "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"};
// Units that may follow a number; single letters only count when a space separates them.
const char* const kUnits[] = {
    "m", "g", "s", "h", "L", "cm", "mm", "km", "meter", "meters", "metre", "metres", "centimeter",
    "centimeters", "millimeter", "millimeters", "kilometer", "kilometers", "inch", "inches", "ft", "feet",
    "foot", "yard", "yards", "mile", "miles", "kg", "mg", "gram", "grams", "kilogram", "kilograms", "lb",
    "lbs", "pound", "pounds", "oz", "ounce", "ounces", "sec", "second", "seconds", "min", "mins", "minute",
    "minutes", "hr", "hrs", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year",
    "years", "degree", "degrees", "deg", "radian", "radians", "rad", "dollar", "dollars", "cent", "cents",
    "euro", "euros", "unit", "units", "square", "sq", "cubic", "per", "mph", "kph", "ml", "mL", "liter",
    "liters", "litre", "litres", "percent", "point", "points"};

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The few non-ASCII symbols models write instead of LaTeX.
std::string replace_unicode(std::string_view s) {
  static const char* const kMap[][2] = {{"\u2212", "-"},       {"\u00d7", "\\times "}, {"\u00f7", "\\div "},
                                        {"\u03c0", "\\pi "},   {"\u221a", "\\sqrt"},   {"\u221e", "\\infty "},
                                        {"\u00b0", ""},        {"\u00b7", "\\cdot "},  {"\u2264", "\\leq "},
                                        {"\u2265", "\\geq "}};
  std::string out(s);
  if (std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; })) return out;
  for (const auto& m : kMap) out = replace_all(out, m[0], m[1]);
  return out;
}

// At s[i] == '^': whether "^\circ" or "^{\circ}" starts there; *end is set past it.
bool degree_sign_at(std::string_view s, size_t i, size_t* end) {
  size_t j = i + 1;
  while (j < s.size() && is_space(s[j])) ++j;
  bool brace = j < s.size() && s[j] == '{';
  if (brace) ++j;
  while (j < s.size() && is_space(s[j])) ++j;
  if (s.compare(j, 5, "\\circ") != 0 || (j + 5 < s.size() && is_alpha(s[j + 5]))) return false;
  j += 5;
  while (j < s.size() && is_space(s[j])) ++j;
  if (brace) {
    if (j >= s.size() || s[j] != '}') return false;
    ++j;
  }
  *end = j;
  return true;
}

// One pass over the commands: unwraps \text{...} (a stack remembers which '{' opened a wrapper,
// so nesting costs nothing extra), drops sizing/spacing commands, '$', '%' and degree signs, and
// renames synonyms (\dfrac -> \frac, \le -> \leq, \varnothing -> \emptyset).
std::string rewrite_commands(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::vector<char> wrapper;  // one entry per open '{': whether it opened a \text-like group
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    size_t end;
    if (c == '^' && degree_sign_at(s, i, &end)) {
      i = end;
    } else if (c == '$' || c == '%') {
      ++i;
    } else if (c == '{') {
      wrapper.push_back(0);
      out += c, ++i;
    } else if (c == '}') {
      out += (!wrapper.empty() && wrapper.back()) ? ' ' : '}';
      if (!wrapper.empty()) wrapper.pop_back();
      ++i;
    } else if (c != '\\') {
      out += c, ++i;
    } else {
      size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      if (j == i + 1) {  // a one-symbol command: keep \{ \} \|, turn \\ into a space, drop the rest
        if (j < s.size()) {  // (\, \! \; \: "\ " are spacing, \% \$ are escaped text)
          char sym = s[j];
          if (sym == '{' || sym == '}' || sym == '|') out.append(s.substr(i, 2));
          if (sym == '\\') out += ' ';
        }
        i = j + 1;
        continue;
      }
      std::string_view name = s.substr(i + 1, j - i - 1);
      i = j;
      if (is_one_of(name, kTextWrappers)) {
        size_t k = j;
        while (k < s.size() && is_space(s[k])) ++k;
        if (k < s.size() && s[k] == '{') {
          wrapper.push_back(1);
          out += ' ';
          i = k + 1;
        }
      } else if (is_one_of(name, kDropped)) {
        if ((name == "left" || name == "right") && i < s.size() && s[i] == '.') ++i;  // \left. is invisible
      } else if (name == "dfrac" || name == "tfrac" || name == "cfrac") {
        out += "\\frac";
      } else if (name == "le" || name == "leqslant" || name == "ge" || name == "geqslant") {
        out += name[0] == 'l' ? "\\leq" : "\\geq";
      } else if (name == "varnothing") {
        out += "\\emptyset";
      } else if (name == "lbrace" || name == "rbrace") {
        out += name == "lbrace" ? "\\{" : "\\}";
      } else {
        out.append(s.substr(j - name.size() - 1, name.size() + 1));
      }
    }
  }
  return out;
}

// Whether the letters starting at s[b] are a word, not the name of a \command.
bool is_word(std::string_view s, size_t b) { return b == 0 || s[b - 1] != '\\'; }

// "2 and 3" (often "2\text{ and }3") lists two answers: "and" becomes a comma.
std::string and_to_comma(std::string_view s) {
  std::string out;
  char last = 0;  // the last non-space character written
  for (size_t i = 0; i < s.size();) {
    if (!is_alpha(s[i])) {
      if (!is_space(s[i])) last = s[i];
      out += s[i++];
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_alpha(s[j])) ++j;
    std::string_view w = s.substr(i, j - i);
    if (w == "and" && is_word(s, i)) {
      if (last != ',') out += ',';  // "1, 2, and 3" has its comma already
      last = ',';
    } else {
      out.append(w);
      last = w.back();
    }
    i = j;
  }
  return out;
}

bool is_unit(std::string_view w) {
  if (w.size() == 1) return w == "m" || w == "g" || w == "s" || w == "h" || w == "L";
  std::string lower(w);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return is_one_of(w, kUnits) || is_one_of(std::string_view(lower), kUnits);
}

// "5 cm", "12 square meters", "3 km/h", "4\text{ cm}^2" -> the number. Only after something that
// ends like a number, so "x" or "\min" stay.
std::string strip_units(std::string s) {
  size_t end = s.size(), cut = npos;
  for (int words = 0; words < 8; ++words) {
    size_t k = end;
    while (k > 0 && is_space(s[k - 1])) --k;
    size_t w_end = k;
    if (k >= 2 && s[k - 2] == '^' && (s[k - 1] == '2' || s[k - 1] == '3')) w_end = k - 2;
    if (k >= 4 && (s.compare(k - 4, 4, "^{2}") == 0 || s.compare(k - 4, 4, "^{3}") == 0)) w_end = k - 4;
    while (w_end < k && w_end > 0 && is_space(s[w_end - 1])) --w_end;
    size_t w = w_end;
    while (w > 0 && is_alpha(s[w - 1])) --w;
    if (w == w_end || !is_word(s, w) || !is_unit(std::string_view(s).substr(w, w_end - w))) break;
    if (w_end - w == 1 && !(w > 0 && (is_space(s[w - 1]) || s[w - 1] == '/'))) break;
    end = w;
    while (end > 0 && is_space(s[end - 1])) --end;
    if (end > 0 && s[end - 1] == '/') --end;  // "km/h"
    cut = end;
  }
  if (cut == npos) return s;
  size_t k = cut;
  while (k > 0 && is_space(s[k - 1])) --k;
  if (k == 0) return s;
  char c = s[k - 1];
  bool numeric_end = is_digit(c) || c == '}' || c == ')' || c == '.' || (k >= 3 && s.compare(k - 3, 3, "\\pi") == 0);
  return numeric_end ? s.substr(0, k) : s;
}

// Drops whitespace, except one space between a command name and a following letter ("\pi r"
// must not become the unknown command "\pir").
std::string squeeze_spaces(std::string_view s) {
  std::string out;
  bool in_command = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (is_space(c)) {
      size_t k = i;
      while (k < s.size() && is_space(s[k])) ++k;
      if (in_command && k < s.size() && is_alpha(s[k])) out += ' ';
      in_command = false;
      i = k - 1;
      continue;
    }
    if (c == '\\') in_command = true;
    else if (!is_alpha(c)) in_command = false;
    out += c;
  }
  return out;
}

// For each '{' or '[' the index of its partner, npos when unbalanced (one linear pass).
std::vector<size_t> match_brackets(std::string_view s) {
  std::vector<size_t> match(s.size(), npos), stack;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{' || s[i] == '[') stack.push_back(i);
    if ((s[i] == '}' || s[i] == ']') && !stack.empty()) {
      if ((s[stack.back()] == '{') == (s[i] == '}')) match[stack.back()] = i;
      stack.pop_back();
    }
  }
  return match;
}

// \frac12 -> \frac{1}{2}, \frac\pi4 -> \frac{\pi}{4}, \sqrt2 -> \sqrt{2}; .5 -> 0.5.
std::string fix_shorthand(std::string_view s) {
  const std::vector<size_t> match = match_brackets(s);
  std::vector<char> open(s.size() + 1, 0), close(s.size() + 1, 0), drop(s.size() + 1, 0);
  auto skip_spaces = [&](size_t p) {
    for (; p < s.size() && s[p] == ' '; ++p) drop[p] = 1;
    return p;
  };
  auto argument = [&](size_t p) {  // brace a bare one-character or one-command argument
    p = skip_spaces(p);
    if (p >= s.size()) return p;
    if (s[p] == '{') return match[p] == npos ? s.size() : match[p] + 1;
    size_t q = p + 1;
    if (s[p] == '\\')
      while (q < s.size() && is_alpha(s[q])) ++q;
    else if (!is_digit(s[p]) && !is_alpha(s[p]))
      return p;
    open[p] = 1, close[q - 1] = 1;
    return q;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || (i + 5 < s.size() && is_alpha(s[i + 5]))) continue;  // \frac and \sqrt: 5 chars
    if (s.compare(i, 5, "\\frac") == 0) {
      argument(argument(i + 5));
    } else if (s.compare(i, 5, "\\sqrt") == 0) {
      size_t p = skip_spaces(i + 5);
      if (p < s.size() && s[p] == '[') p = match[p] == npos ? s.size() : match[p] + 1;
      argument(p);
    }
  }
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (drop[i]) continue;
    if (open[i]) out += '{';
    if (s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && (i == 0 || !is_digit(s[i - 1]))) out += '0';
    out += s[i];
    if (close[i]) out += '}';
  }
  return out;
}

// Normalisation up to, not including, the "x =" prefix: what equations are compared on.
std::string clean(std::string_view answer) {
  std::string s = replace_all(rewrite_commands(replace_unicode(answer)), "{,}", ",");  // 1{,}000
  s = squeeze_spaces(strip_units(and_to_comma(s)));
  while (!s.empty() && s.back() == '.') s.pop_back();  // a sentence's full stop
  return fix_shorthand(s);
}

// End of the variable name starting at s[i] ("x", "x_1", "a_{10}", "\theta", "f'"), or npos.
size_t variable_end(std::string_view s, size_t i) {
  if (i < s.size() && is_alpha(s[i])) {
    ++i;
  } else if (i < s.size() && s[i] == '\\') {
    size_t j = i + 1;
    while (j < s.size() && is_alpha(s[j])) ++j;
    if (!is_one_of(s.substr(i + 1, j - i - 1), kGreek)) return npos;
    i = j;
  } else {
    return npos;
  }
  if (i < s.size() && s[i] == '_') {
    size_t j = i + 1;
    if (j < s.size() && s[j] == '{') {
      ++j;
      while (j < s.size() && (is_alpha(s[j]) || is_digit(s[j]))) ++j;
      if (j >= s.size() || s[j] != '}') return npos;
      i = j + 1;
    } else if (j < s.size() && (is_alpha(s[j]) || is_digit(s[j]))) {
      i = j + 1;
    } else {
      return npos;
    }
  }
  while (i < s.size() && (s[i] == '\'' || s[i] == ' ')) ++i;
  return i;
}

// "x =", "y=", "\theta =", "x_1 =", "(x, y) =", "x \in": variables naming the answer that follows.
std::string_view strip_prefix(std::string_view s) {
  size_t i = 0;
  if (!s.empty() && s[0] == '(') {  // a tuple of variables
    for (i = 1;; ++i) {
      i = variable_end(s, i);
      if (i == npos || i >= s.size() || s[i] == ')') break;
      if (s[i] != ',') return s;
    }
    if (i == npos || i >= s.size()) return s;
    ++i;
  } else {
    i = variable_end(s, 0);
    if (i == npos) return s;
  }
  std::string_view rest;
  if (i < s.size() && s[i] == '=') {
    rest = s.substr(i + 1);
    if (rest.find('=') != npos) return s;  // "x = y = 3", "x == 3": not a plain naming
  } else if (s.compare(i, 3, "\\in") == 0 && (i + 3 >= s.size() || !is_alpha(s[i + 3]))) {
    rest = s.substr(i + 3);
  }
  rest = trim(rest);
  return rest.empty() ? s : rest;
}

// "1,000" and "12,345.5" are numbers when every group after the first has three digits.
std::string drop_thousands_separators(std::string_view s) {
  size_t i = (!s.empty() && s[0] == '-') ? 1 : 0, lead = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == lead || i - lead > 3 || i >= s.size() || s[i] != ',') return std::string(s);
  std::string out(s.substr(0, i));
  while (i < s.size() && s[i] == ',') {
    size_t k = i + 1;
    while (k < s.size() && is_digit(s[k])) ++k;
    if (k - i - 1 != 3) return std::string(s);
    out.append(s.substr(i + 1, 3));
    i = k;
  }
  if (i == s.size()) return out;
  if (s[i] != '.' || i + 1 == s.size()) return std::string(s);
  for (size_t k = i + 1; k < s.size(); ++k)
    if (!is_digit(s[k])) return std::string(s);
  return out + std::string(s.substr(i));
}

// "{5}" -> "5": braces around the whole answer (any depth, one pass).
std::string_view strip_outer_braces(std::string_view s) {
  const std::vector<size_t> match = match_brackets(s);
  size_t k = 0;
  while (2 * k + 1 < s.size() && s[k] == '{' && match[k] == s.size() - 1 - k) ++k;
  return s.substr(k, s.size() - 2 * k);
}

std::string canonical(std::string_view cleaned) {
  return drop_thousands_separators(strip_outer_braces(strip_prefix(strip_outer_braces(cleaned))));
}

// ---- expressions ------------------------------------------------------------------------------

// One node of a parsed expression. op: 'n' number, 'v' variable, '+' '-' '*' '/' '^', '~'
// negation, '!' factorial, '|' absolute value, 'r' root (b = index), 'f' function (fn), 'L'
// logarithm to base b, 'C' binomial coefficient.
struct Node {
  char op;
  double value = 0;
  int a = -1, b = -1;
  int fn = 0;
  bool integer_literal = false;  // written as digits only: "3" in 3\frac{1}{2} starts a mixed number
};

struct Expr {
  std::vector<Node> nodes;
  std::vector<std::string> vars;  // free variable names; node 'v' holds the index in a
  int root = -1;
};

// Functions by name; Fn and kFunctions list them in the same order.
enum Fn { kSin, kCos, kTan, kCot, kSec, kCsc, kArcsin, kArccos, kArctan, kSinh, kCosh, kTanh, kLn, kLog, kExp };
const char* const kFunctions[] = {"sin",    "cos",  "tan",  "cot",  "sec", "csc", "arcsin", "arccos",
                                  "arctan", "sinh", "cosh", "tanh", "ln",  "log", "exp"};

struct ParseFail {};
struct OutOfWork {};

// Recursive descent over a normalised answer: sums, products (explicit and implicit), powers
// (right-associative), unary minus, factorials, and the LaTeX atoms listed in kFunctions and
// atom(). Anything else (matrices, \pm, relations) fails, and the caller falls back to strings.
class Parser {
 public:
  // The node cap also bounds eval()'s recursion: "1+1+...+1" parses in a loop into a left-deep tree.
  Parser(std::string_view s, int max_depth)
      : s_(s), max_depth_(max_depth), max_nodes_(std::min<size_t>(2 * s.size() + 16, 4096)) {}

  std::optional<Expr> run() {
    try {
      e_.root = expr();
      if (peek() != '\0') return std::nullopt;
      return std::move(e_);
    } catch (const ParseFail&) {
      return std::nullopt;
    }
  }

 private:
  struct Depth {  // every recursive path passes expr(), unary() or atom(): they bound the stack
    explicit Depth(Parser& p) : parser(p) {
      if (++parser.depth_ > parser.max_depth_) throw ParseFail();
    }
    ~Depth() { --parser.depth_; }
    Parser& parser;
  };

  char peek() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) throw ParseFail();
  }
  std::string_view command() {  // name of the \command at the cursor, not consumed
    if (peek() != '\\') return {};
    size_t j = i_ + 1;
    while (j < s_.size() && is_alpha(s_[j])) ++j;
    return s_.substr(i_ + 1, j - i_ - 1);
  }
  bool eat_command(std::string_view name) {
    if (command() != name) return false;
    i_ += name.size() + 1;
    return true;
  }
  int add(Node n) {
    if (e_.nodes.size() >= max_nodes_) throw ParseFail();
    e_.nodes.push_back(n);
    return static_cast<int>(e_.nodes.size()) - 1;
  }
  int number_node(double v) { return add(Node{'n', v}); }
  int bin(char op, int a, int b) { return add(Node{op, 0, a, b}); }
  int variable(std::string name) {
    auto it = std::find(e_.vars.begin(), e_.vars.end(), name);
    if (it == e_.vars.end()) it = e_.vars.insert(e_.vars.end(), std::move(name));
    return add(Node{'v', 0, static_cast<int>(it - e_.vars.begin())});
  }

  int expr() {
    Depth d(*this);
    int left = term();
    for (char c = peek(); c == '+' || c == '-'; c = peek()) {
      ++i_;
      left = bin(c, left, term());
    }
    return left;
  }

  int term() {
    int left = unary();
    while (true) {
      if (eat('*') || eat_command("cdot") || eat_command("times")) {
        left = bin('*', left, unary());
      } else if (eat('/') || eat(':') || eat_command("div")) {  // a ratio 3:4 is the quotient 3/4
        left = bin('/', left, unary());
      } else if (starts_atom()) {  // implicit multiplication: 2x, 3\pi, 2(x+1), x\sqrt{2}
        const Node l = e_.nodes[left];  // a copy: power() below may grow the node vector
        bool negative = l.op == '~';
        bool mixed = (negative ? e_.nodes[l.a] : l).integer_literal && integer_fraction_follows();
        int right = power();
        left = bin(mixed ? (negative ? '-' : '+') : '*', left, right);
      } else {
        return left;
      }
    }
  }

  int unary() {
    Depth d(*this);
    if (eat('-')) return add(Node{'~', 0, unary()});
    if (eat('+')) return unary();
    return power();
  }

  int power() {
    int base = atom();
    while (eat('!')) base = add(Node{'!', 0, base});
    if (eat('^')) return bin('^', base, unary());  // unary() recurses into power(): 2^3^2 = 2^9
    return base;
  }

  // "\frac{1}{2}" with digits only, right after an integer: a mixed number (3\frac{1}{2} = 7/2), as
  // competition answers write them.
  bool integer_fraction_follows() {
    size_t j = i_;
    auto literal = [&](std::string_view text) {
      bool ok = s_.compare(j, text.size(), text) == 0;
      j += text.size();
      return ok;
    };
    auto digits = [&] {
      size_t first = j;
      while (j < s_.size() && is_digit(s_[j])) ++j;
      return j > first;
    };
    return literal("\\frac{") && digits() && literal("}{") && digits() && literal("}");
  }

  bool starts_atom() {
    char c = peek();
    if (is_digit(c) || c == '.' || is_alpha(c) || c == '(' || c == '[' || c == '{') return true;
    if (c == '|') return abs_depth_ == 0;  // inside |...| a bar closes
    std::string_view name = command();
    return name == "frac" || name == "sqrt" || name == "pi" || name == "infty" || is_one_of(name, kGreek) ||
           is_one_of(name, kFunctions);
  }

  int atom() {
    Depth d(*this);
    char c = peek();
    if (is_digit(c) || c == '.') return number();
    if (is_alpha(c)) return letter();
    if (c == '(' || c == '[' || c == '{') {
      ++i_;
      int e = expr();
      expect(c == '(' ? ')' : c == '[' ? ']' : '}');
      return e;
    }
    if (c == '|') {
      ++i_, ++abs_depth_;
      int e = expr();
      expect('|');
      --abs_depth_;
      return add(Node{'|', 0, e});
    }
    if (c == '\\') return command_atom();
    throw ParseFail();
  }

  int number() {
    size_t j = i_;
    while (j < s_.size() && (is_digit(s_[j]) || s_[j] == '.')) ++j;
    if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {  // 1e-6, but "2e" is 2 times e
      size_t k = j + 1;
      if (k < s_.size() && (s_[k] == '-' || s_[k] == '+')) ++k;
      if (k < s_.size() && is_digit(s_[k])) {
        j = k;
        while (j < s_.size() && is_digit(s_[j])) ++j;
      }
    }
    std::string text(s_.substr(i_, j - i_));
    if (std::count(text.begin(), text.end(), '.') > 1) throw ParseFail();
    i_ = j;
    int n = number_node(std::strtod(text.c_str(), nullptr));
    e_.nodes[n].integer_literal = text.find_first_not_of("0123456789") == std::string::npos;
    return n;
  }

  int letter() {
    std::string name(1, s_[i_++]);
    if (i_ < s_.size() && s_[i_] == '_') {  // x_1, a_{10}
      ++i_;
      if (i_ < s_.size() && s_[i_] == '{') {
        size_t close = s_.find('}', i_);
        if (close == npos || close - i_ > 16) throw ParseFail();
        name += "_" + std::string(s_.substr(i_ + 1, close - i_ - 1));
        i_ = close + 1;
      } else if (i_ < s_.size() && (is_alpha(s_[i_]) || is_digit(s_[i_]))) {
        name += "_" + std::string(1, s_[i_++]);
      } else {
        throw ParseFail();
      }
    } else if (name == "e") {
      return number_node(kE);
    }
    return variable(name);
  }

  // A \frac or \sqrt argument: {expr}, or a single digit, letter or command.
  int group() {
    char c = peek();
    if (c == '{') return atom();
    if (is_digit(c)) return number_node(s_[i_++] - '0');
    if (is_alpha(c)) return letter();
    if (c == '\\') return atom();
    throw ParseFail();
  }

  int command_atom() {
    std::string_view name = command();
    if (name.empty()) throw ParseFail();
    i_ += name.size() + 1;
    if (name == "frac") {
      int num = group();
      return bin('/', num, group());
    }
    if (name == "sqrt") {
      int index = -1;
      if (eat('[')) {
        index = expr();
        expect(']');
      } else {
        index = number_node(2);
      }
      int radicand = group();
      return bin('r', radicand, index);
    }
    if (name == "binom" || name == "dbinom" || name == "tbinom") {
      int n = group();
      return bin('C', n, group());
    }
    if (name == "pi") return number_node(kPi);
    if (name == "infty") return number_node(HUGE_VAL);
    if (is_one_of(name, kGreek)) return variable("\\" + std::string(name));
    int fn = static_cast<int>(std::find(std::begin(kFunctions), std::end(kFunctions), name) - std::begin(kFunctions));
    if (fn == static_cast<int>(std::size(kFunctions))) throw ParseFail();
    int base = -1, exponent = -1;
    if (name == "log" && eat('_')) base = group();
    if (eat('^')) {
      if (s_.compare(i_, 4, "{-1}") == 0 && fn <= kTan) {  // \sin^{-1} is arcsin
        i_ += 4;
        fn += kArcsin - kSin;
      } else {
        exponent = unary();
      }
    }
    char c = peek();
    int arg = (c == '(' || c == '{' || c == '[') ? atom() : power();  // \sin(x), \ln 2, \sin x
    int call = base >= 0 ? add(Node{'L', 0, arg, base}) : add(Node{'f', 0, arg, -1, fn});
    return exponent >= 0 ? bin('^', call, exponent) : call;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0, abs_depth_ = 0;
  int max_depth_;
  size_t max_nodes_;
  Expr e_;
};

double apply_function(int fn, double x) {
  switch (fn) {
    case kSin: return std::sin(x);
    case kCos: return std::cos(x);
    case kTan: return std::tan(x);
    case kCot: return 1 / std::tan(x);
    case kSec: return 1 / std::cos(x);
    case kCsc: return 1 / std::sin(x);
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

// Shared by every evaluation of one comparison, so a list of many elements cannot multiply the
// budget.
struct Budget {
  long left;
  void spend(long n) {
    left -= n;
    if (left < 0) throw OutOfWork();
  }
};

// The operation of one inner node on its operands' values.
double apply(const Node& n, double x, double y) {
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
    case 'C':  // binomial coefficient, for integer arguments
      if (x != std::floor(x) || y != std::floor(y) || x < 0 || x > 1e6) return NAN;
      if (y < 0 || y > x) return 0;
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

double eval(const Expr& e, int i, const std::vector<double>& vars, Budget& budget) {
  budget.spend(1);
  const Node& n = e.nodes[i];
  if (n.op == 'n') return n.value;
  if (n.op == 'v') return vars[n.a];
  double x = eval(e, n.a, vars, budget), y = n.b >= 0 ? eval(e, n.b, vars, budget) : 0;
  double r = apply(n, x, y);
  // Finite operands that overflow (2^{2000}, 1/0, 10^6!) give no comparable value, and above all
  // not \infty.
  return std::isinf(r) && std::isfinite(x) && std::isfinite(y) ? NAN : r;
}

// The value of variable `name` at evaluation point `point`: pseudo-random but fixed, the same for
// both answers, in [0.3, 2.5] with alternating sign (odd points probe negative inputs too).
double variable_value(const std::string& name, int point) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name, mixed with the point (splitmix64)
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h += 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(point + 1);
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return (point % 2 ? -1 : 1) * (0.3 + 2.2 * u);
}

std::vector<double> values_at(const Expr& e, int point) {
  std::vector<double> v;
  for (const auto& name : e.vars) v.push_back(variable_value(name, point));
  return v;
}

bool near_integer(double x) { return std::fabs(x - std::round(x)) <= 1e-9 * std::max(1.0, std::fabs(x)); }

// Integers compare exactly (a count of 100000 is not 100001), everything else within rel_tol.
bool numbers_close(double a, double b, double rel_tol) {
  if (std::isnan(a) || std::isnan(b)) return false;
  if (std::isinf(a) || std::isinf(b)) return a == b;
  if (near_integer(a) && near_integer(b) && std::fabs(a) < 9e15 && std::fabs(b) < 9e15)
    return std::round(a) == std::round(b);
  if (a == 0 || b == 0) return std::fabs(a - b) <= rel_tol;
  return std::fabs(a - b) <= rel_tol * std::max(std::fabs(a), std::fabs(b));
}

bool exprs_equal(const Expr& a, const Expr& b, const EquivOptions& opt, Budget& budget) {
  if (a.vars.empty() && b.vars.empty())
    return numbers_close(eval(a, a.root, {}, budget), eval(b, b.root, {}, budget), opt.rel_tol);
  int agree = 0;
  for (int p = 0; p < opt.points; ++p) {
    double x = eval(a, a.root, values_at(a, p), budget), y = eval(b, b.root, values_at(b, p), budget);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;  // outside a domain (\sqrt{x} at x < 0)
    if (!numbers_close(x, y, opt.rel_tol)) return false;
    ++agree;
  }
  return agree >= std::min(3, opt.points);
}

// ---- structured answers -----------------------------------------------------------------------

// Splits at `sep` outside brackets; (, [ and { open, ), ] and } close, so "[1,3)" nests fine.
std::vector<std::string_view> split_top(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && s.compare(i, sep.size(), sep) == 0 &&
        !(is_alpha(sep.back()) && i + sep.size() < s.size() && is_alpha(s[i + sep.size()]))) {
      parts.push_back(s.substr(start, i - start));
      start = i + sep.size();
      i = start - 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// Whether the bracket opening at s[first] closes exactly at the last character.
bool wrapped(std::string_view s, size_t first) {
  int depth = 0;
  for (size_t i = first; i < s.size(); ++i) {
    if (s[i] == '(' || s[i] == '[' || s[i] == '{') ++depth;
    if (s[i] == ')' || s[i] == ']' || s[i] == '}') --depth;
    if (depth == 0) return i + 1 == s.size();
  }
  return false;
}

struct Item {
  enum Kind { kScalar, kTuple, kSet, kList, kUnion } kind = kScalar;
  char open = 0, close = 0;     // kTuple: "(1,2)", "[1,3)"
  std::string raw, text;         // kScalar: cleaned text with and without its "x =" prefix
  std::optional<Expr> expr;      // kScalar: parsed text, when it parses
  std::vector<Item> items;
};

bool has_relation(std::string_view t) {
  return t.find('<') != npos || t.find('>') != npos || t.find("\\le") != npos || t.find("\\ge") != npos ||
         t.find("\\ne") != npos || t.find("\\approx") != npos;
}

Item build(std::string_view raw, int depth, const EquivOptions& opt, Budget& budget) {
  Item it;
  std::string t = canonical(raw);
  budget.spend(static_cast<long>(t.size()) + 1);
  auto children = [&](Item::Kind kind, const std::vector<std::string_view>& parts) {
    it.kind = kind;
    for (auto part : parts) it.items.push_back(build(part, depth + 1, opt, budget));
    return it;
  };
  if (depth < 8) {
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
    parts = split_top(t, ",");
    if (parts.size() > 1) return children(Item::kList, parts);
    for (const char* pm : {"\\pm", "\\mp"}) {  // "1\pm\sqrt{2}": the list of both roots
      auto halves = split_top(t, pm);
      if (halves.size() != 2) continue;
      std::string plus = std::string(halves[0]) + "+" + std::string(halves[1]);
      std::string minus = std::string(halves[0]) + "-" + std::string(halves[1]);
      return children(Item::kList, {plus, minus});
    }
  }
  it.raw = std::string(raw);
  it.text = std::move(t);
  if (it.text.find('=') == npos && !has_relation(it.text)) it.expr = Parser(it.text, opt.max_depth).run();
  return it;
}

// "B", "(B)", "B)": a multiple-choice letter.
std::optional<char> choice_letter(std::string_view t) {
  if (t.size() == 3 && t[0] == '(' && t[2] == ')') t = t.substr(1, 1);
  if (t.size() == 2 && t[1] == ')') t = t.substr(0, 1);
  if (t.size() == 1 && t[0] >= 'A' && t[0] <= 'Z') return t[0];
  return std::nullopt;
}

// "(B)12" or "B)12": a choice letter followed by the choice's content.
std::optional<char> leading_choice(std::string_view t) {
  if (t.size() > 3 && t[0] == '(' && t[2] == ')') return choice_letter(t.substr(0, 3));
  if (t.size() > 2 && t[1] == ')') return choice_letter(t.substr(0, 2));
  return std::nullopt;
}

bool is_word_answer(std::string_view t) {
  return t.size() >= 3 && std::all_of(t.begin(), t.end(), [](char c) { return is_alpha(c); });
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Equations are the same when lhs - rhs of one is a constant non-zero multiple of the other's at
// every point: "x+y=1" = "y=1-x" = "2x+2y=2".
bool equations_equal(std::string_view a, std::string_view b, const EquivOptions& opt, Budget& budget) {
  auto difference = [&](std::string_view s) -> std::optional<Expr> {
    auto sides = split_top(s, "=");
    if (sides.size() != 2 || sides[0].empty() || sides[1].empty() || has_relation(s)) return std::nullopt;
    budget.spend(static_cast<long>(s.size()));
    return Parser("(" + std::string(sides[0]) + ")-(" + std::string(sides[1]) + ")", opt.max_depth).run();
  };
  auto da = difference(a), db = difference(b);
  if (!da || !db || (da->vars.empty() && db->vars.empty())) return false;
  int agree = 0;
  double ratio = 0;
  for (int p = 0; p < opt.points; ++p) {
    double x = eval(*da, da->root, values_at(*da, p), budget), y = eval(*db, db->root, values_at(*db, p), budget);
    if (!std::isfinite(x) || !std::isfinite(y) || (std::fabs(x) < 1e-12 && std::fabs(y) < 1e-12)) continue;
    if (std::fabs(y) < 1e-12 || std::fabs(x) < 1e-12) return false;
    if (agree++ == 0) ratio = x / y;
    else if (!numbers_close(x / y, ratio, opt.rel_tol)) return false;
  }
  return agree >= std::min(3, opt.points);
}

bool scalars_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  if (a.text == b.text) return true;
  if (a.text.empty() || b.text.empty()) return false;
  auto ca = choice_letter(a.text), cb = choice_letter(b.text);
  if (ca || cb) {  // a letter only ever equals the same letter, never a value
    if (ca && cb) return *ca == *cb;
    return ca ? leading_choice(b.text) == ca : leading_choice(a.text) == cb;
  }
  if (is_word_answer(a.text) && is_word_answer(b.text) && iequal(a.text, b.text)) return true;  // "Yes"
  if (a.text.find('=') != npos || b.text.find('=') != npos) return equations_equal(a.raw, b.raw, opt, budget);
  if (!a.expr || !b.expr) return false;
  return exprs_equal(*a.expr, *b.expr, opt, budget);
}

bool items_equal(const Item& a, const Item& b, const EquivOptions& opt, Budget& budget) {
  budget.spend(1);  // a long list against another is quadratic: count the pairs too
  auto set_like = [](const Item& i) { return i.kind == Item::kSet || i.kind == Item::kList; };
  if (a.kind == Item::kScalar && b.kind == Item::kScalar) return scalars_equal(a, b, opt, budget);
  if (a.items.size() != b.items.size()) return false;
  // Sets, bare lists of roots and unions of intervals: any order.
  if ((set_like(a) && set_like(b)) || (a.kind == Item::kUnion && b.kind == Item::kUnion)) {
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
  for (size_t i = 0; i < a.items.size(); ++i)  // tuples and intervals: in order
    if (!items_equal(a.items[i], b.items[i], opt, budget)) return false;
  return true;
}

bool has_box(std::string_view s) { return s.find("\\boxed") != npos || s.find("\\fbox") != npos; }

}  // namespace

std::optional<std::string> extract_boxed(std::string_view text, const ExtractOptions& opt) {
  if (opt.require_answer_tag) {
    size_t open = text.rfind("<answer>");
    if (open == npos) return std::nullopt;
    size_t start = open + 8, close = text.find("</answer>", start);
    if (close == npos) return std::nullopt;
    text = text.substr(start, close - start);
  }
  size_t boxed = last_command(text, "\\boxed"), fbox = last_command(text, "\\fbox");
  if (boxed != npos && (fbox == npos || boxed > fbox)) return box_argument(text, boxed + 6);
  if (fbox != npos) return box_argument(text, fbox + 5);
  if (opt.require_answer_tag) return std::string(trim(text));  // the tag itself marks the answer
  return std::nullopt;
}

std::string normalize_answer(std::string_view answer) { return canonical(clean(trim(answer))); }

bool answers_equivalent(std::string_view predicted, std::string_view reference, const EquivOptions& opt) {
  predicted = trim(predicted), reference = trim(reference);
  if (predicted.size() > opt.max_length || reference.size() > opt.max_length) return predicted == reference;
  try {
    Budget budget{opt.max_work};
    Item a = build(clean(predicted), 0, opt, budget), b = build(clean(reference), 0, opt, budget);
    if (a.kind == Item::kScalar && a.text.empty()) return false;
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

}  // namespace ovr::rl
