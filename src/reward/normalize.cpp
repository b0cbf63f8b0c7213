// Answer normalisation: one linear pass per concern, applied in clean() and canonical().
#include "reward/normalize.h"

#include <algorithm>
#include <vector>

#include "reward/latex_expr.h"
#include "reward/text_util.h"

namespace ovr::reward {
namespace {

// Commands that only wrap text or change the font: unwrapped, their argument kept.
const char* const kTextWrappers[] = {"text",   "textbf",  "textit",     "textrm", "textsf", "textnormal",
                                     "mathrm", "mathbf",  "mathit",     "mathsf", "mbox",   "hbox",
                                     "boldsymbol", "bm", "operatorname", "textup", "emph"};
// Commands that change nothing about the value: sizes, spacing, display style.
const char* const kDropped[] = {"left",  "right", "big",  "Big",   "bigg",  "Bigg",  "bigl",   "bigr",
                                "Bigl",  "Bigr",  "biggl", "biggr", "Biggl", "Biggr", "displaystyle",
                                "textstyle", "quad", "qquad", "limits", "nolimits"};
// Units that may follow a number; single letters only count when a space separates them.
const char* const kUnits[] = {
    "m", "g", "s", "h", "L", "cm", "mm", "km", "meter", "meters", "metre", "metres", "centimeter",
    "centimeters", "millimeter", "millimeters", "kilometer", "kilometers", "in", "inch", "inches", "ft",
    "feet", "foot", "yd", "yard", "yards", "mi", "mile", "miles", "kg", "mg", "gram", "grams", "kilogram",
    "kilograms", "lb", "lbs", "pound", "pounds", "oz", "ounce", "ounces", "sec", "second", "seconds", "min",
    "mins", "minute", "minutes", "hr", "hrs", "hour", "hours", "day", "days", "week", "weeks", "month",
    "months", "year", "years", "radian", "radians", "rad", "dollar", "dollars", "cent", "cents", "euro",
    "euros", "unit", "units", "square", "sq", "cubic", "cu", "per", "mph", "kph", "ml", "mL", "liter",
    "liters", "litre", "litres", "percent", "point", "points"};
const char* const kDegreeWords[] = {"degree", "degrees", "deg"};
// What a response may write before the answer inside its box: dropped, case-insensitive.
const char* const kLeadIns[] = {"the final answer is", "final answer is", "the answer is", "answer is",
                                "final answer:", "the answer:", "answer:", "ans:", "so ", "thus ",
                                "therefore ", "hence "};

// The non-ASCII symbols models write instead of LaTeX, and full-width forms (U+FF01..U+FF5E are
// ASCII 0x21..0x7E; U+3000 is a space).
std::string replace_unicode(std::string_view s) {
  static const char* const kMap[][2] = {{"\u2212", "-"},       {"\u00d7", "\\times "}, {"\u00f7", "\\div "},
                                        {"\u03c0", "\\pi "},   {"\u221a", "\\sqrt"},   {"\u221e", "\\infty "},
                                        {"\u00b0", "^\\circ "}, {"\u00b7", "\\cdot "},  {"\u2264", "\\leq "},
                                        {"\u2265", "\\geq "},  {"\u2260", "\\neq "},   {"\u222a", "\\cup "},
                                        {"\u2208", "\\in "},   {"\u2205", "\\emptyset "}, {"\u211d", "\\mathbb{R}"},
                                        {"\u3000", " "}};
  if (std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; })) return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto u = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    if (i + 2 < s.size() && u(i) == 0xEF && (u(i + 1) == 0xBC || u(i + 1) == 0xBD)) {
      unsigned code = 0xFF00 + ((u(i + 1) & 0x03) << 6) + (u(i + 2) & 0x3F);
      if (code >= 0xFF01 && code <= 0xFF5E) {
        out += static_cast<char>(code - 0xFEE0);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
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
// so nesting costs nothing extra), drops sizing/spacing commands, '$' and '%', writes every degree
// sign as "^\circ", and renames synonyms (\dfrac -> \frac, \le -> \leq, \ne -> \neq, \langle -> (,
// \varnothing -> \emptyset). "\\" ends a matrix row inside \begin...\end and is a space elsewhere.
std::string rewrite_commands(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::vector<char> wrapper;  // one entry per open '{': whether it opened a \text-like group
  int environments = 0;       // open \begin{...}
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    size_t end;
    if (c == '^' && degree_sign_at(s, i, &end)) {
      out += "^\\circ ";
      i = end;
    } else if (c == '$' || c == '%') {
      ++i;
    } else if (c == '~') {
      out += ' ', ++i;
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
      if (j == i + 1) {  // a one-symbol command: keep \{ \} \|, "\\" is a row end or a space, drop the rest
        if (j < s.size()) {  // (\, \! \; \: "\ " are spacing, \% \$ are escaped text)
          char sym = s[j];
          if (sym == '{' || sym == '}' || sym == '|') out.append(s.substr(i, 2));
          if (sym == '\\') out += environments > 0 ? "\\\\" : " ";
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
      } else if (name == "circ" || name == "degree") {
        out += "^\\circ ";
      } else if (name == "dfrac" || name == "tfrac" || name == "cfrac") {
        out += "\\frac";
      } else if (name == "dbinom" || name == "tbinom") {
        out += "\\binom";
      } else if (name == "le" || name == "leqslant" || name == "ge" || name == "geqslant") {
        out += name[0] == 'l' ? "\\leq" : "\\geq";
      } else if (name == "ne") {
        out += "\\neq";
      } else if (name == "lt" || name == "gt") {
        out += name == "lt" ? '<' : '>';
      } else if (name == "langle" || name == "rangle") {
        out += name == "langle" ? '(' : ')';
      } else if (name == "varnothing") {
        out += "\\emptyset";
      } else if (name == "lbrace" || name == "rbrace") {
        out += name == "lbrace" ? "\\{" : "\\}";
      } else {
        environments += name == "begin" ? 1 : (name == "end" && environments > 0) ? -1 : 0;
        out.append(s.substr(j - name.size() - 1, name.size() + 1));
      }
    }
  }
  return out;
}

// "The answer is 12" -> "12": lead-in words a response writes inside its box.
std::string_view strip_lead_in(std::string_view s) {
  s = trim(s);
  for (const char* phrase : kLeadIns)
    if (istarts_with(s, phrase)) return trim(s.substr(std::string_view(phrase).size()));
  return s;
}

// Whether the letters starting at s[b] are a word, not the name of a \command.
bool is_word(std::string_view s, size_t b) { return b == 0 || s[b - 1] != '\\'; }

// "2 and 3" (often "2\text{ and }3") lists two answers: "and" becomes ',' and "or" ';' (a set of
// reals reads ';' as a union, ',' between conditions as their intersection).
std::string and_or_to_separators(std::string_view s) {
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
    if ((w == "and" || w == "or") && is_word(s, i) && last != 0) {
      if (last == ',' && !out.empty()) out.back() = ' ';  // "1, 2, and 3": its comma is the separator
      out += w == "and" ? ',' : ';';
      last = out.back();
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
  std::string low(w);
  for (char& c : low) c = lower(c);
  return is_one_of(w, kUnits) || is_one_of(std::string_view(low), kUnits) || is_one_of(std::string_view(low), kDegreeWords);
}

// "5 cm", "12 square meters", "12 sq. units", "3 km/h", "4\text{ cm}^2" -> the number; "30 degrees"
// -> "30^\circ". Only after something that ends like a number, so "x" or "\min" stay.
std::string strip_units(std::string s) {
  size_t end = s.size(), cut = npos;
  bool degrees = false;
  for (int words = 0; words < 8; ++words) {
    size_t k = end;
    while (k > 0 && is_space(s[k - 1])) --k;
    size_t w_end = k;
    if (k >= 2 && s[k - 2] == '^' && (s[k - 1] == '2' || s[k - 1] == '3')) w_end = k - 2;
    if (k >= 4 && (s.compare(k - 4, 4, "^{2}") == 0 || s.compare(k - 4, 4, "^{3}") == 0)) w_end = k - 4;
    while (w_end < k && w_end > 0 && is_space(s[w_end - 1])) --w_end;
    if (w_end > 1 && s[w_end - 1] == '.' && is_alpha(s[w_end - 2])) --w_end;  // "sq.", "in."
    size_t w = w_end;
    while (w > 0 && is_alpha(s[w - 1])) --w;
    if (w == w_end || !is_word(s, w)) break;
    std::string_view word = std::string_view(s).substr(w, w_end - w);
    if (!is_unit(word)) break;
    if (w_end - w <= 2 && !(w > 0 && (is_space(s[w - 1]) || s[w - 1] == '/' || s[w - 1] == '.'))) break;
    degrees = degrees || is_one_of(word, kDegreeWords);
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
  if (!numeric_end) return s;
  return s.substr(0, k) + (degrees ? "^\\circ" : "");
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

// \frac12 -> \frac{1}{2}, \frac\pi4 -> \frac{\pi}{4}, \sqrt2 -> \sqrt{2}; .5 -> 0.5; a base
// subscript 1011_{2} -> 1011_2.
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
    if (s[i] == '_' && i > 0 && is_digit(s[i - 1]) && i + 1 < s.size() && s[i + 1] == '{' && match[i + 1] != npos) {
      size_t m = match[i + 1], first = i + 2, last = m;  // _{2}, _{(2)}
      if (m > i + 3 && s[first] == '(' && s[m - 1] == ')') ++first, --last;
      bool digits = last > first;
      for (size_t k = first; k < last; ++k) digits = digits && is_digit(s[k]);
      if (digits)
        for (size_t k : {i + 1, first - 1, last, m}) drop[k] = s[k] == '{' || s[k] == '}' || s[k] == '(' || s[k] == ')';
    }
    auto command_at = [&](std::string_view name) {  // the whole command name, not a prefix of one
      return s.compare(i, name.size(), name) == 0 && !(i + name.size() < s.size() && is_alpha(s[i + name.size()]));
    };
    if (s[i] != '\\') continue;
    if (command_at("\\frac") || command_at("\\binom")) {
      argument(argument(i + (s[i + 1] == 'f' ? 5 : 6)));
    } else if (command_at("\\sqrt")) {
      size_t p = skip_spaces(i + 5);
      if (p < s.size() && s[p] == '[') p = match[p] == npos ? s.size() : match[p] + 1;
      argument(p);
    }
  }
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (drop[i]) continue;
    if (open[i]) out += '{';
    if (s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && (i == 0 || !(is_digit(s[i - 1]) || is_alpha(s[i - 1]))))
      out += '0';  // (not in "B.12", a choice and its content)
    out += s[i];
    if (close[i]) out += '}';
  }
  return out;
}

// "f(x) =", "f^{-1}(x) =", "g'(t) =": a function named before its definition; the index past the
// ')' or npos. Arguments are variables or numbers.
size_t function_name_end(std::string_view s) {
  size_t i = variable_end(s, 0);
  if (i == npos) return npos;
  if (s.compare(i, 5, "^{-1}") == 0) i += 5;
  if (i >= s.size() || s[i] != '(') return npos;
  size_t close = s.find(')', i);
  if (close == npos || close - i > 24) return npos;
  for (size_t k = i + 1; k < close; ++k)
    if (!(is_alpha(s[k]) || is_digit(s[k]) || s[k] == ',' || s[k] == '_' || s[k] == '.' || s[k] == '-')) return npos;
  return close + 1;
}

// "x =", "y=", "\theta =", "x_1 =", "(x, y) =", "f(x) =", "x \in": names of the answer that follows;
// a bare leading "=" too.
std::string_view strip_prefix(std::string_view s) {
  // "= \frac{7}{4}": the naming's right-hand side written without its name (MathVerse's answers).
  if (s.size() > 1 && s[0] == '=' && s[1] != '=' && s.find('=', 1) == npos) return trim(s.substr(1));
  size_t i = 0;
  if (!s.empty() && s[0] == '(') {  // a tuple of variables
    for (i = 1;; ++i) {
      i = variable_end(s, i);
      if (i == npos || i >= s.size() || s[i] == ')') break;
      if (s[i] != ',') return s;
    }
    if (i == npos || i >= s.size()) return s;
    ++i;
  } else if ((i = function_name_end(s)) == npos) {
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

// "Option", "Choice", "Answer" before a choice letter.
std::string_view strip_choice_word(std::string_view t) {
  for (std::string_view w : {"option", "choice", "answer"})
    if (istarts_with(t, w) && t.size() > w.size() && (t[w.size()] == '(' || (t[w.size()] >= 'A' && t[w.size()] <= 'Z')))
      return t.substr(w.size());
  return t;
}

}  // namespace

size_t variable_end(std::string_view s, size_t i) {
  if (i < s.size() && is_alpha(s[i])) {
    ++i;
  } else if (i < s.size() && s[i] == '\\') {
    size_t j = i + 1;
    while (j < s.size() && is_alpha(s[j])) ++j;
    if (!is_greek_letter(s.substr(i + 1, j - i - 1))) return npos;
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

std::string clean(std::string_view answer) {
  std::string s = replace_all(rewrite_commands(replace_unicode(trim(answer))), "{,}", ",");  // 1{,}000
  s = squeeze_spaces(strip_units(and_or_to_separators(strip_lead_in(s))));
  while (!s.empty() && s.back() == '.') s.pop_back();  // a sentence's full stop
  return fix_shorthand(s);
}

std::string canonical(std::string_view cleaned) {
  return drop_thousands_separators(strip_outer_braces(strip_prefix(strip_outer_braces(cleaned))));
}

std::optional<char> choice_letter(std::string_view t) {
  t = strip_choice_word(t);
  if (t.size() == 3 && t[0] == '(' && t[2] == ')') t = t.substr(1, 1);
  if (t.size() == 2 && (t[1] == ')' || t[1] == ':')) t = t.substr(0, 1);
  if (t.size() == 1 && t[0] >= 'A' && t[0] <= 'Z') return t[0];
  return std::nullopt;
}

std::optional<char> leading_choice(std::string_view t) {
  t = strip_choice_word(t);
  if (t.size() > 3 && t[0] == '(' && t[2] == ')') return choice_letter(t.substr(0, 3));
  if (t.size() > 2 && (t[1] == ')' || t[1] == '.' || t[1] == ':')) return choice_letter(t.substr(0, 1));
  return std::nullopt;
}

std::string normalize_answer(std::string_view answer) { return canonical(clean(answer)); }

}  // namespace ovr::reward
