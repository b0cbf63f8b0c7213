// Qwen2.5-VL's tokenizer: a Hugging Face tokenizer.json with byte-level BPE, reproduced exactly.
//
// encode(text) does what Hugging Face `tokenizers` does for Qwen2 (add_special_tokens=false):
//   1. added tokens ("<|im_end|>", "<tool_call>", ...) are found in the raw text first, leftmost-
//      longest, and split it; with allow_special=false the *special* ones are left as plain text
//      (the non-special added tokens such as <tool_call> still match, as in HF);
//   2. each piece between them is NFC-normalised (ICU);
//   3. split by the pre-tokenizer regex read from tokenizer.json (text/split_regex.h: PCRE2
//      with Unicode properties, \s read as Unicode White_Space as HF's regex engine reads it);
//   4. each pre-token's UTF-8 bytes become the ids of the 256 byte tokens (GPT-2's byte-level
//      alphabet) and are merged by rank (text/bpe.h). Repeated pre-tokens come from a cache.
// decode(ids) concatenates the bytes of the tokens and replaces invalid UTF-8 with U+FFFD, one
// per maximal invalid subsequence, as Rust's String::from_utf8_lossy (HF's decoder) does. Ids
// with no token are skipped, as HF does.
//
// Only the tokenizer.json features Qwen2-family tokenizers use are accepted; anything else (a
// different model type, normaliser or pre-tokenizer, byte fallback, stripping added tokens) is
// an ovr::Error naming the file and the field, not a silently different tokenisation.
// encode/decode are const and thread-safe (the word cache takes a lock). Loading Qwen's 6 MB
// tokenizer.json takes about half a second, as in HF.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ovr::text {

class Tokenizer {
 public:
  // `path`: a tokenizer.json, or a directory holding one (a Hugging Face model directory).
  explicit Tokenizer(const std::string& path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Token ids of UTF-8 text (no BOS/EOS added). Invalid UTF-8 is an ovr::Error.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const;
  // The same, appended to `out` (lets the chat template build one sequence without copies).
  void encode_append(std::string_view text, std::vector<int32_t>& out, bool allow_special = true) const;
  // Text of ids; skip_special drops the special added tokens (not <tool_call> and the like).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  // Steps of encode, for tests and debugging: NFC, and the regex split of (unnormalised) text.
  std::string normalize(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  // Highest id + 1 (151665 for Qwen2.5-VL; the model's embedding table may be larger).
  int32_t vocab_size() const;
  // Tokens in Hugging Face's spelling: byte-level strings ("Ġworld") or an added token's text.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // ovr::Error for an id with no token
  // The bytes `id` decodes to (may be part of a UTF-8 character); empty for an unknown id.
  const std::string& token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;  // an added token marked "special" (<|im_end|>, ...)

  // Qwen2.5-VL's special tokens (all required at load time).
  int32_t eos_id() const;           // <|im_end|> (the end of every turn)
  int32_t pad_id() const;           // <|endoftext|>
  int32_t im_start_id() const;      // <|im_start|>
  int32_t im_end_id() const { return eos_id(); }
  int32_t vision_start_id() const;  // <|vision_start|>
  int32_t vision_end_id() const;    // <|vision_end|>
  int32_t image_pad_id() const;     // <|image_pad|>: one per merged vision token

  const std::string& path() const;  // the tokenizer.json that was loaded

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ovr::text
