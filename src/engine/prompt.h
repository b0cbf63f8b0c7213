// Prompts to generate from (RL and evaluation): JSONL rows -> chat messages with their reference
// answers and images, and the prompt template around the user text.
//
// A row: {"id": ..., "prompt": "text"} or {"messages": [user turn(s), images as in SFT rows]},
// with "answer" (required) and optionally "image": "PATH" (one image before a text prompt).
// Image paths are relative to the JSONL file's folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace ovr::engine {

struct PromptRow {
  int64_t index = 0;                       // row number among the usable rows
  std::string id, answer, source;          // source: "FILE:LINE"
  std::vector<text::ChatMessage> messages;
  std::vector<std::string> images;         // resolved paths, in message order
};

std::vector<PromptRow> load_prompts(const std::string& path);

// How the prompt is written before generation:
//   chat: Qwen2.5-VL's chat template with the generation prompt (system prompt by default);
//   orz:  Open-Reasoner-Zero's template around the user text (think / answer tags, boxed answer),
//         inside the chat template's user turn.
std::string apply_prompt_template(const std::string& name, const std::string& user_text);
std::vector<int32_t> prompt_tokens(const text::Tokenizer& tok, const PromptRow& row, const std::string& template_name,
                                   const std::vector<int64_t>& image_pad_counts);

}  // namespace ovr::engine
