// The verifiable math reward (Open-Reasoner-Zero / Open Vision Reasoner style): 1 if the final
// answer of a response equals the reference answer, else 0. Rule-based, no model, no torch.
//
// The rules, in order:
//   1. The answer is the content of the LAST \boxed{...} (or \fbox{...}, or "\boxed 5") of the
//      response; with require_answer_tag, only the last <answer>...</answer> span is searched,
//      and the span itself is the answer when it holds no box. No box: reward 0 ("no_answer").
//   2. A response cut off at the length limit scores 0 ("truncated"), as in Open-Reasoner-Zero,
//      even when its box is right: a policy must not learn that rambling pays. The extracted
//      answer is still recorded, for the logs.
//   3. Both answers are normalised (normalize_answer) and compared as strings; then structurally
//      (tuples and intervals in order with matching brackets, sets, bare comma lists, "a \pm b"
//      and unions in any order; a multiple-choice letter only equals the same letter); then
//      numerically: each scalar is parsed as a LaTeX expression and evaluated, constants within
//      a relative tolerance (integers exactly), expressions with free variables at a few fixed
//      pseudo-random points, equations as lhs - rhs up to a constant factor. A rounded decimal
//      matches an exact reference only with about five significant digits at the default
//      tolerance 1e-4: 0.3333333 = 1/3, but 0.33 != 1/3. Percentages are compared without the
//      sign (25\% = 25, not 0.25); units are dropped, not converted.
//   4. Every step is bounded (answer length, parser depth, evaluation work), so a hostile answer
//      costs at most milliseconds and scores 0; nothing here throws.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ovr::rl {

struct ExtractOptions {
  bool require_answer_tag = false;  // the prompt template asks for <answer>...</answer>
};

// The content of the last \boxed{...} / \fbox{...} (braces balanced, nested braces fine), or of
// "\boxed 5" (up to the next whitespace or '$'). nullopt when there is none or when the last one
// is unbalanced (a cut-off response); "\boxed{}" gives "".
std::optional<std::string> extract_boxed(std::string_view text, const ExtractOptions& opt = {});

// Canonical text of an answer: no spaces, \left/\right, spacing commands, $, %, degree signs,
// \text{} wrappers, trailing units or period, "x =" prefix, thousands separators; \dfrac ->
// \frac, \frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}, .5 -> 0.5. Linear in the input length.
std::string normalize_answer(std::string_view answer);

struct EquivOptions {
  double rel_tol = 1e-4;       // relative tolerance for numbers (absolute when one side is 0)
  size_t max_length = 1000;    // longer answers (after extraction) only compare as raw strings
  int max_depth = 64;          // parser nesting limit
  long max_work = 200000;      // parsed-node evaluations allowed for one comparison
  int points = 8;              // evaluation points for expressions with free variables
};

// Whether `predicted` states the same answer as `reference` (rule 3 above).
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

}  // namespace ovr::rl
