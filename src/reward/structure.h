// The shape of an answer: a scalar, or tuples, sets, lists, unions and matrices of answers.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reward/evaluate.h"
#include "reward/latex_expr.h"
#include "reward/reward.h"

namespace ovr::reward {

struct Item {
  enum Kind { kScalar, kTuple, kSet, kList, kUnion, kMatrix } kind = kScalar;
  char open = 0, close = 0;      // kTuple: "(1,2)", "[1,3)"
  int rows = 0, cols = 0;        // kMatrix: items hold the entries row by row
  std::string raw, text;         // kScalar: cleaned text with and without its "x =" prefix
  std::optional<Expr> expr;      // kScalar: parsed text, when it parses
  std::vector<Item> items;
};

// The item a cleaned answer (normalize.h) describes:
//   "\{1,2\}" a set; "(1,2)" / "[1,3)" a tuple with its brackets; "1,2" or "1;2" a list (of roots);
//   "x=2,y=3" a system, read as the tuple of values ordered by variable name; "x=1;x=2" a list;
//   "[1,2)\cup(3,4]" a union; "1\pm\sqrt2" (a \pm anywhere) the list of both signs;
//   \begin{pmatrix|bmatrix|Bmatrix|matrix|array}...\end{...} a matrix; a vmatrix its determinant.
// Nesting stops at depth 8 (the rest is a scalar).
Item build_item(std::string_view cleaned, int depth, const EquivOptions& opt, Budget& budget);

}  // namespace ovr::reward
