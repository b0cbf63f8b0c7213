// The verifiable math reward (Open-Reasoner-Zero / Open Vision Reasoner style): 1 if the final
// answer of a response equals the reference answer, else 0. Rule-based, no model, no torch.
// docs/reward.md states the policy with examples; the files of this folder, one concern each:
//   extract.cpp     the answer of a response: the last \boxed{} (or the <answer> span)
//   normalize.cpp   canonical text: formatting, units, prefixes ("x =", "f(x) ="), choice forms
//   latex_expr.cpp  a LaTeX expression parser (numbers, functions, complex i, degrees, ...)
//   evaluate.cpp    evaluation in complex doubles under a work budget; the tolerance policy
//   real_set.cpp    inequalities, intervals and set-builder notation as sets of reals
//   structure.cpp   tuples, sets, lists, matrices, systems: an answer's shape
//   equivalence.cpp the comparison of two answers, and score_response
//
// The rules, in order:
//   1. The answer is the content of the LAST \boxed{...} (or \fbox{...}, or "\boxed 5") of the
//      response; with require_answer_tag, only the last <answer>...</answer> span is searched,
//      and the span itself is the answer when it holds no box. No box: reward 0 ("no_answer").
//   2. A response cut off at the length limit scores 0 ("truncated"), as in Open-Reasoner-Zero,
//      even when its box is right: a policy must not learn that rambling pays. The extracted
//      answer is still recorded, for the logs.
//   3. Both answers are normalised and compared: as strings; as sets of reals (inequalities,
//      intervals, unions, set-builder, \mathbb{R} minus points); structurally (tuples and
//      vectors in order, sets ignoring order and repeats, lists of roots, systems of
//      "x = .., y = .." against tuples, matrices entry by entry, a multiple-choice letter only
//      equal to the same letter); then by value: each scalar is parsed as LaTeX and evaluated in
//      complex arithmetic, expressions with free variables at fixed pseudo-random points,
//      equations as lhs - rhs up to a constant factor.
//   4. Tolerance: exact forms compare at double precision; a decimal equals an exact value only
//      when it is that value, or when the value does not terminate and the decimal is its
//      correct rounding with at least min_significant_digits digits (0.3333 = 1/3, 0.33 and
//      0.3332 are not; the same for a decimal reference); two decimals compare exactly. decimal_places >= 0 is a
//      benchmark's stated precision (MathVista's "precision"): both sides rounded to it.
//   5. Every step is bounded (answer length, parser depth, evaluation work), so a hostile answer
//      costs at most milliseconds and scores 0; nothing here throws.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ovr::reward {

struct ExtractOptions {
  bool require_answer_tag = false;  // the prompt template asks for <answer>...</answer>
};

// The content of the last \boxed{...} / \fbox{...} (braces balanced, nested braces fine), or of
// "\boxed 5" (up to the next whitespace or '$'). nullopt when there is none or when the last one
// is unbalanced (a cut-off response); "\boxed{}" gives "".
std::optional<std::string> extract_boxed(std::string_view text, const ExtractOptions& opt = {});

// Canonical text of an answer: no spaces, \left/\right, spacing commands, $, %, \text{} wrappers,
// trailing units or period, lead-in phrases ("The answer is"), "x =" / "f(x) =" prefixes,
// thousands separators; \dfrac -> \frac, \frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}, .5 -> 0.5,
// degree signs -> ^\circ, full-width characters -> ASCII. Linear in the input length.
std::string normalize_answer(std::string_view answer);

struct EquivOptions {
  int min_significant_digits = 4;  // of a decimal that stands for a non-terminating exact value
  int decimal_places = -1;         // >= 0: a stated precision; both values rounded to it
  size_t max_length = 1000;        // longer answers (after extraction) only compare as raw strings
  int max_depth = 512;             // parser nesting limit (about 100 nested \frac or \sqrt)
  long max_work = 200000;          // parsed-node evaluations allowed for one comparison
  int points = 8;                  // evaluation points for expressions with free variables
};

// Whether `predicted` states the same answer as `reference` (rules 3 and 4 above).
bool answers_equivalent(std::string_view predicted, std::string_view reference, const EquivOptions& opt = {});

struct RewardOptions {
  ExtractOptions extract;
  EquivOptions equiv;
};

// reason is one of:
//   "correct"    reward 1
//   "wrong"      an answer was found and differs from the reference
//   "no_answer"  no box (or an empty one, or an unbalanced last one)
//   "truncated"  the response hit the length limit (finish reason "length"); scored 0
//   "too_long"   the boxed answer is longer than EquivOptions::max_length; scored 0
struct RewardResult {
  double reward = 0.0;
  std::string extracted;  // the boxed answer as written ("" when none)
  std::string reason;
};

// Scores one response. `reference` may itself hold a \boxed{} answer, which is then extracted.
RewardResult score_response(std::string_view response, std::string_view reference, bool truncated,
                            const RewardOptions& opt = {});

}  // namespace ovr::reward
