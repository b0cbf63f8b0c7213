// Answers that describe a set of real numbers, in any of the ways they are written: inequalities
// ("2 < x", "-1<x\leq3", "|x-1|<2", "x\neq0", "2x+1>5"), intervals and unions of them,
// set-builder notation ("\{x \mid x>2\}"), \mathbb{R}, \emptyset, complements
// ("\mathbb{R}\setminus\{0\}") and finite sets of numbers. Two such answers are equal when they
// describe the same set.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

#include "reward/evaluate.h"
#include "reward/reward.h"

namespace ovr::reward {

struct Interval {
  double lo, hi;
  bool lo_closed, hi_closed;
};
using RealSet = std::vector<Interval>;  // sorted, disjoint, none empty; a point is [a, a]

// Whether the (canonical) text holds a relation sign: <, >, \leq, \geq, \neq, \approx.
bool has_relation(std::string_view t);

// Whether the text can only mean a set of reals: a relation, \mathbb{R}, \infty, \setminus,
// \cup, set-builder braces, or a square bracket. Then "(1,2)" on the other side is read as an
// interval, not a point.
bool names_real_set(std::string_view t);

// The set the canonical text describes, or nullopt when it is not one (or not in one variable,
// or an inequality that is not linear or |linear|).
std::optional<RealSet> parse_real_set(std::string_view t, const EquivOptions& opt, Budget& budget);

bool real_sets_equal(const RealSet& a, const RealSet& b);

}  // namespace ovr::reward
