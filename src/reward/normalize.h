// Canonical text of an answer: formatting, units, lead-in words and "x =" prefixes removed, so
// that answers written differently compare equal as strings or parse as LaTeX (rules in reward.h).
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ovr::reward {

// Normalisation up to, not including, the "x =" prefix (what equations and systems are read from).
std::string clean(std::string_view answer);

// clean()'s text without its naming prefix ("x =", "f(x) =", "(x, y) =", "x \in"), braces around
// the whole, and thousands separators.
std::string canonical(std::string_view cleaned);

// End of the variable name starting at s[i] ("x", "x_1", "a_{10}", "\theta", "f'"), or npos.
size_t variable_end(std::string_view s, size_t i);

// A multiple-choice letter written alone: "B", "(B)", "B)", "OptionB", "Choice(B)" (cleaned text,
// so spaces are gone).
std::optional<char> choice_letter(std::string_view t);

// A choice letter followed by the choice's content: "(B)12", "B)12", "B.12", "B:12".
std::optional<char> leading_choice(std::string_view t);

}  // namespace ovr::reward
