// The pre-tokenizer's regex split (Hugging Face's Split pre-tokenizer with behavior "Isolated"):
// every match is a piece and so is any text between matches. Patterns are in the dialect of HF
// `tokenizers` (Oniguruma: Perl-like, with lookahead such as Qwen's `\s+(?!\S)`) and run on PCRE2
// with UTF, Unicode properties (UCP) and JIT, which reads \p{L}, \p{N}, (?i:...) alike. One
// rewrite makes them agree: HF's \s is Unicode White_Space (U+0085 yes; U+180E, U+200B and U+FEFF
// no), while PCRE2's \s under UCP also matches U+180E; so \s and \S become \p{White_Space} and
// \P{White_Space}, in and out of character classes. Checked against Python `tokenizers` on the
// reference splits and on random strings of hard characters.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ovr::text {

class SplitRegex {
 public:
  // ovr::Error (with PCRE2's message and the offset) for a pattern that does not compile.
  explicit SplitRegex(const std::string& pattern);
  ~SplitRegex();
  SplitRegex(SplitRegex&&) noexcept;
  SplitRegex& operator=(SplitRegex&&) noexcept;

  // Appends the pieces of `text`, which must be valid UTF-8 (the caller checks: matching skips
  // PCRE2's own check for speed), to `out` as views into `text`. Empty matches split nothing.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  const std::string& pattern() const;  // as given, before the rewrite

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ovr::text
