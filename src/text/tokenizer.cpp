#include "text/tokenizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error.h"
#include "io/fs.h"
#include "text/bpe.h"
#include "text/split_regex.h"

namespace ovr::text {

namespace {

using json = nlohmann::json;

// ---- UTF-8 --------------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7), or 0 if none starts
// there; *valid_prefix gets how many bytes of it were well-formed (>= 1), which is how much one
// U+FFFD replaces ("maximal subpart" substitution, what Rust's from_utf8_lossy does).
size_t utf8_sequence(const unsigned char* s, size_t n, size_t i, size_t* valid_prefix) {
  const unsigned char b = s[i];
  *valid_prefix = 1;
  if (b < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b >= 0xC2 && b <= 0xDF) len = 2;
  else if (b == 0xE0) len = 3, lo = 0xA0;
  else if (b >= 0xE1 && b <= 0xEC) len = 3;
  else if (b == 0xED) len = 3, hi = 0x9F;  // no surrogates
  else if (b >= 0xEE && b <= 0xEF) len = 3;
  else if (b == 0xF0) len = 4, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) len = 4;
  else if (b == 0xF4) len = 4, hi = 0x8F;  // nothing above U+10FFFF
  else return 0;
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= n) return 0;
    const unsigned char c = s[i + k];
    if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return 0;
    *valid_prefix = k + 1;
  }
  return len;
}

// Offset of the first ill-formed sequence at or after `from` (npos when none), and in *bad_len the
// bytes it spans (its longest valid prefix, at least 1: what one U+FFFD replaces).
size_t next_invalid_utf8(std::string_view text, size_t from, size_t* bad_len) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = from; i < n;) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const size_t len = utf8_sequence(s, n, i, bad_len);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t first_invalid_utf8(std::string_view text) {
  size_t bad_len;
  return next_invalid_utf8(text, 0, &bad_len);
}

void append_utf8_lossy(std::string_view bytes, std::string& out) {
  size_t at = 0, bad_len;
  for (size_t i; (i = next_invalid_utf8(bytes, at, &bad_len)) != std::string_view::npos; at = i + bad_len) {
    out.append(bytes.data() + at, i - at);
    out += "\xEF\xBF\xBD";
  }
  out.append(bytes.data() + at, bytes.size() - at);
}

// The code point at s[*i] of well-formed UTF-8 (callers checked it); advances *i past it.
uint32_t next_code_point(std::string_view s, size_t* i) {
  const auto b = static_cast<unsigned char>(s[*i]);
  const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3F);
  *i += len;
  return cp;
}

// ---- GPT-2 byte-level alphabet ----------------------------------------------------------------

// Vocabulary strings spell each byte as one character: printable Latin-1 bytes as themselves,
// the other 68 bytes as U+0100.. in byte order (so the space is "Ġ" = U+0120).
struct ByteLevel {
  static constexpr uint32_t kChars = 256 + 68;  // the alphabet is U+0021..U+0143
  std::array<int16_t, kChars> to_byte;          // -1: not in the alphabet
  ByteLevel() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_byte[printable ? uint32_t(b) : next++] = int16_t(b);
    }
  }
};

const ByteLevel& byte_level() {
  static const ByteLevel table;
  return table;
}

// Raw bytes of a byte-level vocabulary string; false if a character is outside the alphabet.
bool byte_level_decode(std::string_view token, std::string& out) {
  out.clear();
  for (size_t i = 0; i < token.size();) {
    const uint32_t cp = next_code_point(token, &i);
    if (cp >= ByteLevel::kChars || byte_level().to_byte[cp] < 0) return false;
    out += char(byte_level().to_byte[cp]);
  }
  return true;
}

// How many pre-token -> ids results the cache keeps (HF keeps 10,000). When full it stops
// growing, as HF's does: the words seen first stay, and frequent words are seen early.
constexpr size_t kCacheEntries = 1 << 16;
// Pre-tokens this long or longer are merged without the cache: they rarely repeat.
constexpr size_t kCacheMaxBytes = 64;

}  // namespace

// ---- the tokenizer -----------------------------------------------------------------------------

struct Tokenizer::Impl {
  std::string path;
  BpeMerges merges;
  std::array<int32_t, 256> byte_id{};
  std::vector<std::string> hf_token;   // by id; empty when the id has no token
  std::vector<std::string> raw_bytes;  // by id: what the id decodes to
  std::vector<uint8_t> special;        // by id: 1 for a special added token
  std::unordered_map<std::string, int32_t> hf_to_id;

  struct Added {
    std::string content;
    int32_t id;
    bool special, normalized;
  };
  std::vector<Added> added;                       // longest first
  std::array<bool, 256> added_first_byte{};       // some added token starts with this byte
  bool any_normalized_added = false;
  const icu::Normalizer2* nfc = nullptr;  // ICU's NFC singleton; null: no normaliser
  std::unique_ptr<SplitRegex> regex;
  int32_t eos = -1, pad = -1, im_start = -1, vision_start = -1, vision_end = -1, image_pad = -1;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }

  void load(const json& doc);
  void load_model(const json& model);
  void load_added(const json& list);
  void load_pipeline(const json& doc);

  // Per-call buffers, reused across the pieces of one text.
  struct Scratch {
    std::vector<std::string_view> words;
    std::vector<int32_t> ids;
    std::string key;
  };

  // Calls emit(piece, added_id) for the pieces of `text` between added tokens (added_id -1) and
  // for the added tokens themselves. `normalized` picks which added tokens match (HF matches
  // the non-normalised ones on the raw text, the normalised ones after normalisation).
  template <class Emit>
  void split_added(std::string_view text, bool allow_special, bool normalized, Emit&& emit) const;
  // Normalises, splits and merges text that holds no (non-normalised) added token.
  void encode_ordinary(std::string_view text, bool allow_special, std::vector<int32_t>& out, Scratch& scratch) const;
  void encode_words(std::string_view text, std::vector<int32_t>& out, Scratch& scratch) const;
  // Appends the ids of one pre-token.
  void bpe(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const;
  std::string nfc_normalize(std::string_view text) const;
  int32_t required_id(const std::string& content) const;
};

void Tokenizer::Impl::load(const json& doc) {
  if (!doc.is_object()) fail("not a tokenizer.json (the top level is not an object)");
  if (!doc.contains("model") || !doc["model"].is_object()) fail("no \"model\" object");
  load_model(doc["model"]);
  if (doc.contains("added_tokens") && !doc["added_tokens"].is_null()) load_added(doc["added_tokens"]);
  load_pipeline(doc);
  eos = required_id("<|im_end|>");
  pad = required_id("<|endoftext|>");
  im_start = required_id("<|im_start|>");
  vision_start = required_id("<|vision_start|>");
  vision_end = required_id("<|vision_end|>");
  image_pad = required_id("<|image_pad|>");
}

void Tokenizer::Impl::load_model(const json& model) {
  if (model.value("type", std::string()) != "BPE")
    fail("model.type is " + model.value("type", json("missing")).dump() + "; only \"BPE\" is supported");
  auto empty_or_null = [&](const char* key) {
    return !model.contains(key) || model[key].is_null() ||
           (model[key].is_string() && model[key].get<std::string>().empty());
  };
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
    if (!empty_or_null(key)) fail(std::string("model.") + key + " is set; byte-level BPE as Qwen2 uses it has none");
  if (model.value("byte_fallback", false)) fail("model.byte_fallback is true, which this tokenizer does not support");
  if (model.value("ignore_merges", false)) fail("model.ignore_merges is true, which this tokenizer does not support");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab is missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array()) fail("model.merges is missing or not a list");

  const json& vocab = model["vocab"];
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      fail("model.vocab[\"" + tok + "\"] is not a token id");
    max_id = std::max(max_id, id.get<int32_t>());
  }
  hf_token.assign(size_t(max_id) + 1, std::string());
  raw_bytes.assign(size_t(max_id) + 1, std::string());
  byte_id.fill(-1);
  hf_to_id.reserve(vocab.size() + 64);
  std::string raw;
  for (const auto& [tok, id_json] : vocab.items()) {
    const int32_t id = id_json.get<int32_t>();
    if (first_invalid_utf8(tok) != std::string_view::npos || !byte_level_decode(tok, raw))
      fail("model.vocab[\"" + tok + "\"] is not a byte-level token (a character outside GPT-2's byte alphabet)");
    if (!hf_token[id].empty()) fail("model.vocab: id " + std::to_string(id) + " is given to two tokens");
    hf_token[id] = tok;
    raw_bytes[id] = raw;
    hf_to_id.emplace(tok, id);
    if (raw.size() == 1) byte_id[static_cast<unsigned char>(raw[0])] = id;
  }
  for (int b = 0; b < 256; ++b)
    if (byte_id[b] < 0) fail("model.vocab has no token for byte " + std::to_string(b) + " (not byte-level BPE)");

  const json& merges_json = model["merges"];
  std::string left, right;
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const json& m = merges_json[i];
    // Two spellings exist: "a b" (older files) and ["a", "b"] (tokenizers >= 0.20).
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail("model.merges[" + std::to_string(i) + "] is not \"LEFT RIGHT\"");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail("model.merges[" + std::to_string(i) + "] is neither \"LEFT RIGHT\" nor [LEFT, RIGHT]");
    }
    auto l = hf_to_id.find(left), r = hf_to_id.find(right), m_id = hf_to_id.find(left + right);
    if (l == hf_to_id.end() || r == hf_to_id.end() || m_id == hf_to_id.end())
      fail("model.merges[" + std::to_string(i) + "] (\"" + left + "\", \"" + right +
           "\") uses a token missing from model.vocab");
    merges.add(l->second, r->second, m_id->second);
  }
}

void Tokenizer::Impl::load_added(const json& list) {
  if (!list.is_array()) fail("added_tokens is not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& t = list[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
        !t["content"].is_string())
      fail(where + " has no integer \"id\" and string \"content\"");
    const int64_t id = t["id"].get<int64_t>();
    const std::string content = t["content"].get<std::string>();
    if (id < 0 || id > INT32_MAX) fail(where + ": id " + std::to_string(id) + " is out of range");
    if (content.empty() || first_invalid_utf8(content) != std::string_view::npos)
      fail(where + ": content is empty or not UTF-8");
    for (const char* flag : {"single_word", "lstrip", "rstrip"})
      if (t.value(flag, false)) fail(where + " (" + content + ") sets " + flag + ", which this tokenizer does not support");
    if (size_t(id) >= hf_token.size()) {
      hf_token.resize(size_t(id) + 1);
      raw_bytes.resize(size_t(id) + 1);
    }
    // An added token may repeat a vocabulary entry (same id); a different token on the id is wrong.
    if (!hf_token[id].empty() && hf_token[id] != content)
      fail(where + ": id " + std::to_string(id) + " is already the token \"" + hf_token[id] + "\"");
    hf_token[id] = content;
    hf_to_id[content] = int32_t(id);
    // HF decodes added tokens through the byte-level decoder too: their characters are mapped
    // back to bytes if all are in the byte alphabet, otherwise the text is kept as it is.
    if (!byte_level_decode(content, raw_bytes[id])) raw_bytes[id] = content;
    const bool is_special = t.value("special", false);
    added.push_back({content, int32_t(id), is_special, t.value("normalized", !is_special)});
    added_first_byte[static_cast<unsigned char>(content[0])] = true;
    any_normalized_added = any_normalized_added || added.back().normalized;
  }
  std::stable_sort(added.begin(), added.end(),
                   [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
  special.assign(hf_token.size(), 0);
  for (const Added& a : added) special[a.id] = a.special;
}

void Tokenizer::Impl::load_pipeline(const json& doc) {
  if (special.size() < hf_token.size()) special.resize(hf_token.size(), 0);
  // Normaliser: none or NFC (also accepted as a one-element Sequence).
  const json norm = doc.value("normalizer", json());
  if (!norm.is_null()) {
    const std::string type = norm.value("type", std::string());
    const bool is_nfc = type == "NFC" || (type == "Sequence" && norm.value("normalizers", json()).is_array() &&
                                          norm["normalizers"].size() == 1 &&
                                          norm["normalizers"][0].value("type", std::string()) == "NFC");
    if (!is_nfc) fail("normalizer " + norm.dump() + " is not supported (only NFC)");
    // Fetched here, once, so that concurrent encodes never race on ICU's lazy initialisation.
    UErrorCode status = U_ZERO_ERROR;
    nfc = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status) || !nfc) fail(std::string("ICU has no NFC normaliser: ") + u_errorName(status));
  }
  // Pre-tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)], Qwen2's.
  const json pre = doc.value("pre_tokenizer", json());
  const std::string expect = "pre_tokenizer: expected Sequence[Split(Regex, behavior Isolated, invert false), "
                             "ByteLevel(add_prefix_space false, use_regex false)] as Qwen2 has";
  if (!pre.is_object() || pre.value("type", std::string()) != "Sequence" ||
      !pre.value("pretokenizers", json()).is_array() || pre["pretokenizers"].size() != 2)
    fail(expect);
  const json& split = pre["pretokenizers"][0];
  const json& bl = pre["pretokenizers"][1];
  if (split.value("type", std::string()) != "Split" || split.value("behavior", std::string()) != "Isolated" ||
      split.value("invert", false) || !split.value("pattern", json()).is_object() ||
      !split["pattern"].value("Regex", json()).is_string())
    fail(expect + " (the Split step differs)");
  if (bl.value("type", std::string()) != "ByteLevel" || bl.value("add_prefix_space", false) || bl.value("use_regex", true))
    fail(expect + " (the ByteLevel step differs)");
  const std::string pattern = split["pattern"]["Regex"].get<std::string>();

  try {
    regex = std::make_unique<SplitRegex>(pattern);
  } catch (const Error& e) {
    fail(std::string("pre_tokenizer: ") + e.what());
  }
}

int32_t Tokenizer::Impl::required_id(const std::string& content) const {
  for (const Added& a : added)
    if (a.content == content) return a.id;
  fail("no added token \"" + content + "\" (is this a Qwen2.5-VL tokenizer?)");
}

std::string Tokenizer::Impl::nfc_normalize(std::string_view text) const {
  // Code points below U+0300 are all NFC and never compose with what precedes them, so text
  // without a byte >= 0xCC (a lead byte of U+0300 and above) is already normalised.
  if (!nfc || std::none_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0xCC; }))
    return std::string(text);
  UErrorCode status = U_ZERO_ERROR;
  const icu::StringPiece sp(text.data(), int32_t(text.size()));
  if (nfc->isNormalizedUTF8(sp, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, int32_t(text.size()));
  nfc->normalizeUTF8(0, sp, sink, nullptr, status);
  if (U_FAILURE(status)) throw Error(std::string("ICU: NFC normalisation failed: ") + u_errorName(status));
  return out;
}

template <class Emit>
void Tokenizer::Impl::split_added(std::string_view text, bool allow_special, bool normalized, Emit&& emit) const {
  size_t start = 0;  // start of the pending ordinary piece
  for (size_t i = 0; i < text.size(); ++i) {
    if (!added_first_byte[static_cast<unsigned char>(text[i])]) continue;
    // Leftmost-longest, as HF's Aho-Corasick matcher: `added` is sorted longest first.
    for (const Added& a : added) {
      if (a.normalized != normalized || (a.special && !allow_special)) continue;
      if (text.compare(i, a.content.size(), a.content) != 0) continue;
      if (i > start) emit(text.substr(start, i - start), -1);
      emit(text.substr(i, a.content.size()), a.id);
      i += a.content.size() - 1;
      start = i + 1;
      break;
    }
  }
  if (start < text.size()) emit(text.substr(start), -1);
}

void Tokenizer::Impl::bpe(std::string_view word, std::vector<int32_t>& out, Scratch& scratch) const {
  if (word.size() == 1) {  // a single byte needs no merging (every digit, most punctuation)
    out.push_back(byte_id[static_cast<unsigned char>(word[0])]);
    return;
  }
  const bool cacheable = word.size() < kCacheMaxBytes;
  if (cacheable) {
    scratch.key.assign(word);
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(scratch.key);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t>& ids = scratch.ids;
  ids.resize(word.size());
  for (size_t i = 0; i < word.size(); ++i) ids[i] = byte_id[static_cast<unsigned char>(word[i])];
  merges.merge(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() < kCacheEntries) cache.emplace(scratch.key, ids);
  }
}

void Tokenizer::Impl::encode_words(std::string_view text, std::vector<int32_t>& out, Scratch& scratch) const {
  scratch.words.clear();
  regex->split(text, scratch.words);
  for (std::string_view word : scratch.words) bpe(word, out, scratch);
}

void Tokenizer::Impl::encode_ordinary(std::string_view text, bool allow_special, std::vector<int32_t>& out,
                                      Scratch& scratch) const {
  const std::string normalized = nfc_normalize(text);
  if (!any_normalized_added) return encode_words(normalized, out, scratch);
  // Added tokens marked "normalized" match only after normalisation (Qwen has none).
  split_added(normalized, allow_special, true, [&](std::string_view piece, int32_t id) {
    if (id >= 0) out.push_back(id);
    else encode_words(piece, out, scratch);
  });
}

// ---- public interface --------------------------------------------------------------------------

Tokenizer::Tokenizer(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = io::is_directory(path) ? io::join_path(path, "tokenizer.json") : path;
  if (!io::path_exists(impl_->path)) throw Error(impl_->path + ": no such file (expected a Hugging Face tokenizer.json)");
  const std::string text = io::read_text_file(impl_->path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(impl_->path + ": not valid JSON: " + e.what());
  }
  try {
    impl_->load(doc);
  } catch (const json::exception& e) {  // a field of the wrong JSON type
    throw Error(impl_->path + ": malformed tokenizer.json: " + e.what());
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out, bool allow_special) const {
  const size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error("tokenizer: text to encode is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  Impl::Scratch scratch;
  out.reserve(out.size() + text.size() / 3);
  impl_->split_added(text, allow_special, false, [&](std::string_view piece, int32_t id) {
    if (id >= 0) out.push_back(id);
    else impl_->encode_ordinary(piece, allow_special, out, scratch);
  });
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  encode_append(text, out, allow_special);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= impl_->raw_bytes.size()) continue;
    if (skip_special && impl_->special[id]) continue;
    bytes += impl_->raw_bytes[id];
  }
  if (first_invalid_utf8(bytes) == std::string_view::npos) return bytes;
  std::string out;
  append_utf8_lossy(bytes, out);
  return out;
}

std::string Tokenizer::normalize(std::string_view text) const {
  const size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error("tokenizer: text to normalise is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  return impl_->nfc_normalize(text);
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  const size_t bad = first_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error("tokenizer: text to split is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<std::string_view> views;
  impl_->regex->split(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->hf_token.size()); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = impl_->hf_to_id.find(std::string(token));
  if (it == impl_->hf_to_id.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->hf_token.size() || impl_->hf_token[id].empty())
    throw Error(impl_->path + ": no token with id " + std::to_string(id));
  return impl_->hf_token[id];
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string none;
  if (id < 0 || size_t(id) >= impl_->raw_bytes.size()) return none;
  return impl_->raw_bytes[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->special.size() && impl_->special[id];
}

int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
int32_t Tokenizer::im_start_id() const { return impl_->im_start; }
int32_t Tokenizer::vision_start_id() const { return impl_->vision_start; }
int32_t Tokenizer::vision_end_id() const { return impl_->vision_end; }
int32_t Tokenizer::image_pad_id() const { return impl_->image_pad; }
const std::string& Tokenizer::path() const { return impl_->path; }

}  // namespace ovr::text
