#include "text/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"

namespace ovr::text {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(code, msg, sizeof msg);
  return reinterpret_cast<const char*>(msg);
}

std::string rewrite_white_space(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char c = pattern[++i];
      if (c == 's') out += "\\p{White_Space}";
      else if (c == 'S') out += "\\P{White_Space}";
      else out += '\\', out += c;  // any other escape (\\, \p, \r, ...) is copied whole
    } else {
      out += pattern[i];
    }
  }
  return out;
}

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

struct SplitRegex::Impl {
  std::string pattern;
  std::unique_ptr<pcre2_code, CodeDeleter> code;
  bool jit = false;
};

SplitRegex::SplitRegex(const std::string& pattern) : impl_(std::make_unique<Impl>()) {
  impl_->pattern = pattern;
  const std::string translated = rewrite_white_space(pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  impl_->code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                  PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr));
  if (!impl_->code)
    throw Error("regex '" + pattern + "' does not compile (PCRE2, at offset " + std::to_string(offset) +
                " of the rewritten pattern): " + pcre2_message(err));
  // JIT matching is several times faster; without JIT support the interpreter gives the same pieces.
  impl_->jit = pcre2_jit_compile(impl_->code.get(), PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::~SplitRegex() = default;
SplitRegex::SplitRegex(SplitRegex&&) noexcept = default;
SplitRegex& SplitRegex::operator=(SplitRegex&&) noexcept = default;

const std::string& SplitRegex::pattern() const { return impl_->pattern; }

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  // One match-data block per call: calls may come from several threads at once.
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(pcre2_match_data_create(1, nullptr));
  if (!md) throw Error("regex split: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap = 0;  // start of the text no match has covered yet
  size_t pos = 0;  // where the next search starts
  while (pos < text.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code.get(), subject, text.size(), pos, 0, md.get(), nullptr)
                              : pcre2_match(impl_->code.get(), subject, text.size(), pos, PCRE2_NO_UTF_CHECK,
                                            md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0)
      throw Error("regex '" + impl_->pattern + "' failed at byte " + std::to_string(pos) + ": " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t begin = ov[0], end = ov[1];
    if (end == begin) {  // search again from the next character
      pos = begin + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (begin > gap) out.push_back(text.substr(gap, begin - gap));
    out.push_back(text.substr(begin, end - begin));
    gap = pos = end;
  }
  if (gap < text.size()) out.push_back(text.substr(gap));
}

}  // namespace ovr::text
