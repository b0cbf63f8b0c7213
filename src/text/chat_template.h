// Qwen2.5-VL's chat format, rendered straight to token ids together with the SFT loss mask.
//
// The text is what Hugging Face renders with Qwen2.5-VL's chat_template, after the processor has
// expanded each image's <|image_pad|> to the image's number of merged vision tokens:
//
//   <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n   only if the first message is
//                                                                   not a system message
//   <|im_start|>ROLE\nCONTENT<|im_end|>\n                           for each message, in order
//   <|im_start|>assistant\n                                         add_generation_prompt
//
// CONTENT is a string, or a list of items rendered in order: text as it is, and each image as
// [Picture K: ]<|vision_start|><|image_pad|> x N<|vision_end|> ("Picture K: " with add_vision_id;
// N from the caller, grid_t * grid_h * grid_w / merge^2, see image_pad_count).
//
// Token ids are those of tokenizing that whole string as HF does (special tokens split it; each
// piece between two special tokens is encoded on its own). Pieces are encoded here without
// building the string, which gives the same ids: no added token can straddle a piece boundary,
// since they all begin with '<' and contain no other '<'. render_chat gives the string itself.
//
// Assistant mask (1 = an assistant token, on which the SFT loss is taken), per assistant message:
//   1: the tokens of its text content, and its closing <|im_end|>;
//   0: its header "<|im_start|>assistant\n", the "\n" after <|im_end|>, and any vision tokens
//      (<|vision_start|>, <|image_pad|>, <|vision_end|>) inside it;
// and 0 for every token of system and user messages and of the generation prompt. This is what
// HF's return_assistant_tokens_mask gives for a template whose {% generation %} block wraps
// "content + <|im_end|>" (TRL's convention for Qwen): like HF, which maps characters to tokens,
// a token that holds both the header's final "\n" and the first content characters (content
// starting with a newline run, e.g. "\n\nx": the regex joins "\n\n\n") counts as assistant. In an
// assistant message with images, a "Picture K: " label counts as content.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace ovr::text {

struct ChatItem {
  enum class Type { Text, Image };
  Type type = Type::Text;
  std::string text;  // Text only
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ChatItem> content;

  static ChatMessage text(std::string role, std::string text) {
    return {std::move(role), {ChatItem{ChatItem::Type::Text, std::move(text)}}};
  }
};

struct ChatOptions {
  bool add_generation_prompt = false;  // end with "<|im_start|>assistant\n" for generation
  bool add_vision_id = false;          // "Picture K: " before the K-th image (of all messages)
  std::string default_system_prompt = "You are a helpful assistant.";
  // HF tokenizes the rendered string with special tokens on, so "<|im_end|>" written inside a
  // message becomes the special token. false encodes message text with allow_special=false.
  bool special_tokens_in_content = true;
};

struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant_mask;  // same length as ids; see the mask rules above
};

// Ids and mask of a conversation. image_pad_counts[k] is the number of <|image_pad|> tokens of
// the k-th image in message order. ovr::Error for an unknown role, or a count that does not
// match the images (too few, too many, or one below 1).
ChatTokens apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                               const std::vector<int64_t>& image_pad_counts = {}, const ChatOptions& options = {});

// The string HF renders (images already expanded), for debugging and for tests.
std::string render_chat(const std::vector<ChatMessage>& messages, const std::vector<int64_t>& image_pad_counts = {},
                        const ChatOptions& options = {});

// Messages in OpenAI/HF form: [{"role": ..., "content": "text" | [{"type": "text", "text": ...},
// {"type": "image", ...}, {"type": "image_url", ...}]}]. ovr::Error naming the message index
// for anything else (videos included: they are not supported).
std::vector<ChatMessage> chat_messages_from_json(const nlohmann::json& messages);

// The image references of messages that chat_messages_from_json accepted, in order: the string of an item's "image" key, or
// of "image_url" (a string or {"url": ...}). "" for an image item that names none.
std::vector<std::string> chat_image_sources(const nlohmann::json& messages);

// <|image_pad|> tokens of one image: its patch grid (from the image processor) divided by the
// spatial merge (2 x 2 patches per vision token in Qwen2.5-VL).
int64_t image_pad_count(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge_size = 2);

}  // namespace ovr::text
