// Recursive descent over a normalised answer (grammar in latex_expr.h).
#include "reward/latex_expr.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "reward/text_util.h"

namespace ovr::reward {
namespace {

constexpr double kPi = 3.14159265358979323846, kE = 2.71828182845904523536;

const char* const kGreek[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
                              "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho",
                              "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma",
                              "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"};
const char* const kFunctions[] = {"sin",    "cos",  "tan",  "cot",  "sec", "csc", "arcsin", "arccos",
                                  "arctan", "sinh", "cosh", "tanh", "ln",  "log", "exp"};

struct ParseFail {};

class Parser {
 public:
  // The node cap also bounds evaluation's recursion: "1+1+...+1" parses in a loop into a left-deep tree.
  Parser(std::string_view s, int max_depth)
      : s_(s), max_depth_(max_depth), max_nodes_(std::min<size_t>(2 * s.size() + 16, 4096)) {}

  std::optional<Expr> run() {
    try {
      e_.root = expr();
      if (peek() != '\0') return std::nullopt;
      const Node& root = e_.nodes[e_.root];  // "N^\circ" alone: remember N
      if (root.op == '*' && root.b >= 0 && degree_node_ == root.b && e_.nodes[root.a].op == 'n') {
        e_.is_degree_literal = true;
        e_.degree_literal = e_.nodes[root.a].value.real();
      }
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
  bool eat_text(std::string_view text) {
    peek();
    if (s_.compare(i_, text.size(), text) != 0) return false;
    i_ += text.size();
    return true;
  }
  int add(Node n) {
    if (e_.nodes.size() >= max_nodes_) throw ParseFail();
    e_.nodes.push_back(n);
    return static_cast<int>(e_.nodes.size()) - 1;
  }
  int number_node(std::complex<double> v) { return add(Node{'n', v}); }
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
    if (eat_command("choose")) return bin('C', left, expr());  // n \choose k
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
    if (eat_text("^\\circ")) {  // degrees, as radians: \sin 30^\circ = 1/2
      e_.degrees = true;
      degree_node_ = number_node(kPi / 180);
      return bin('*', base, degree_node_);
    }
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
    return name == "frac" || name == "sqrt" || name == "binom" || name == "pi" || name == "infty" ||
           is_one_of(name, kGreek) || is_one_of(name, kFunctions);
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
    double value = std::strtod(text.c_str(), nullptr);
    if (text.find('.') != std::string::npos && text.find_first_of("eE") == std::string::npos &&
        (eat_command("overline") || eat_command("dot"))) {  // 0.1\overline{6} = 1/6
      size_t open = i_;
      std::string block;
      if (eat('{')) {
        while (i_ < s_.size() && is_digit(s_[i_])) block += s_[i_++];
        expect('}');
      } else if (i_ < s_.size() && is_digit(s_[i_])) {
        block += s_[i_++];
      }
      if (block.empty() || block.size() > 15 || open == i_) throw ParseFail();
      // x = text + 0.00..0(block)(block)...: the block repeats from the text's last decimal place.
      size_t places = text.size() - text.find('.') - 1;
      double repeat = std::strtod(block.c_str(), nullptr) / (std::pow(10.0, static_cast<double>(block.size())) - 1);
      value += repeat / std::pow(10.0, static_cast<double>(places));
      return number_node(value);
    }
    int n = number_node(value);
    Node& node = e_.nodes[n];
    node.integer_literal = text.find_first_not_of("0123456789") == std::string::npos;
    size_t dot = text.find('.');
    if (text.size() <= 18 && text.find_first_of("eE") == std::string::npos && dot + 1 != text.size()) {
      std::string digits = text;  // "12.50" is 1250/100
      if (dot != std::string::npos) digits.erase(dot, 1);
      node.num = std::strtoll(digits.c_str(), nullptr, 10);
      node.den = 1;
      for (size_t k = dot == std::string::npos ? 0 : text.size() - dot - 1; k > 0; --k) node.den *= 10;
    }
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
    } else if (name == "C" && peek() == '(') {  // C(n, k): the binomial coefficient
      size_t back = i_;
      ++i_;
      int n = expr();
      if (eat(',')) {
        int k = expr();
        expect(')');
        return bin('C', n, k);
      }
      i_ = back;  // C(x+1): a variable times a bracket
    } else if (name == "i") {  // the imaginary unit: answers name indices with subscripts, not i
      e_.imaginary = true;
      return number_node(std::complex<double>(0, 1));
    }
    return variable(name);
  }

  // A \frac or \sqrt argument: {expr}, or a single digit, letter or command.
  int group() {
    char c = peek();
    if (c == '{') return atom();
    if (is_digit(c)) {
      int n = number_node(s_[i_] - '0');
      e_.nodes[n].num = s_[i_++] - '0', e_.nodes[n].den = 1;
      return n;
    }
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
    if (name == "binom") {
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
    if (s_.compare(i_, 6, "^\\circ") != 0 && eat('^')) {
      if (s_.compare(i_, 4, "{-1}") == 0 && fn <= kTan) {  // \sin^{-1} is arcsin
        i_ += 4;
        fn += kArcsin - kSin;
      } else {
        exponent = unary();
      }
    }
    char c = peek();
    int arg = (c == '(' || c == '{' || c == '[') ? atom() : power();  // \sin(x), \ln 2, \sin x
    if ((c == '(' || c == '{' || c == '[') && eat_text("^\\circ")) {  // \sin(30)^\circ
      e_.degrees = true;
      arg = bin('*', arg, number_node(kPi / 180));
    }
    int call = base >= 0 ? add(Node{'L', 0, arg, base}) : add(Node{'f', 0, arg, -1, fn});
    return exponent >= 0 ? bin('^', call, exponent) : call;
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0, abs_depth_ = 0;
  int max_depth_;
  size_t max_nodes_;
  int degree_node_ = -1;
  Expr e_;
};

}  // namespace

std::optional<Expr> parse_expression(std::string_view text, int max_depth) { return Parser(text, max_depth).run(); }

bool is_greek_letter(std::string_view name) { return is_one_of(name, kGreek); }

}  // namespace ovr::reward
