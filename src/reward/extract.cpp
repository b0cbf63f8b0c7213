// The answer of a response: the last \boxed{} / \fbox{} (rules in reward.h).
#include "reward/reward.h"
#include "reward/text_util.h"

namespace ovr::reward {
namespace {

// Start of the last "\name" in s that is the whole command name ("\boxed", not "\boxedfoo").
size_t last_command(std::string_view s, std::string_view name) {
  size_t end = s.size();
  while (true) {
    size_t p = s.rfind(name, end);
    if (p == npos) return npos;
    size_t after = p + name.size();
    if (after >= s.size() || !is_alpha(s[after])) return p;
    if (p == 0) return npos;
    end = p - 1;
  }
}

// The argument of a box command whose name ends at `pos`.
std::optional<std::string> box_argument(std::string_view s, size_t pos) {
  size_t j = pos;
  while (j < s.size() && is_space(s[j])) ++j;
  if (j >= s.size()) return std::nullopt;
  if (s[j] == '{') {
    int depth = 0;
    for (size_t k = j; k < s.size(); ++k) {
      if (s[k] == '\\') {  // \{ and \} are set braces, not grouping
        ++k;
        continue;
      }
      if (s[k] == '{') ++depth;
      if (s[k] == '}' && --depth == 0) return std::string(s.substr(j + 1, k - j - 1));
    }
    return std::nullopt;  // unbalanced: the response was cut off inside its answer
  }
  size_t k = j;  // "\boxed 5": up to the next whitespace or '$'
  while (k < s.size() && !is_space(s[k]) && s[k] != '$') ++k;
  return std::string(s.substr(j, k - j));
}

}  // namespace

std::optional<std::string> extract_boxed(std::string_view text, const ExtractOptions& opt) {
  if (opt.require_answer_tag) {
    size_t open = text.rfind("<answer>");
    if (open == npos) return std::nullopt;
    size_t start = open + 8, close = text.find("</answer>", start);
    if (close == npos) return std::nullopt;
    text = text.substr(start, close - start);
  }
  size_t boxed = last_command(text, "\\boxed"), fbox = last_command(text, "\\fbox");
  if (boxed != npos && (fbox == npos || boxed > fbox)) return box_argument(text, boxed + 6);
  if (fbox != npos) return box_argument(text, fbox + 5);
  if (opt.require_answer_tag) return std::string(trim(text));  // the tag itself marks the answer
  return std::nullopt;
}

}  // namespace ovr::reward
