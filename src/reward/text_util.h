// Character and bracket helpers shared by the reward's files. ASCII only: answers are UTF-8, and
// the few non-ASCII symbols that matter are rewritten to LaTeX first (normalize.cpp).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ovr::reward {

constexpr size_t npos = std::string_view::npos;

inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s);
bool iequal(std::string_view a, std::string_view b);  // ASCII case-insensitive
bool istarts_with(std::string_view s, std::string_view prefix);

template <size_t N>
bool is_one_of(std::string_view word, const char* const (&list)[N]) {
  for (const char* w : list)
    if (word == w) return true;
  return false;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

// For each '{' or '[' the index of its partner, npos when unbalanced (one linear pass).
std::vector<size_t> match_brackets(std::string_view s);

// Splits at `sep` outside brackets; (, [ and { open, ), ] and } close, so "[1,3)" nests fine. A
// separator that is a word ("or") only matches whole.
std::vector<std::string_view> split_top(std::string_view s, std::string_view sep);

// Whether the bracket opening at s[first] closes exactly at the last character.
bool wrapped(std::string_view s, size_t first);

}  // namespace ovr::reward
