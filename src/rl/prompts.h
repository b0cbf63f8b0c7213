// RL prompts: JSONL rows -> chat prompts with their reference answers, the iteration's share of
// them, and the response-length curriculum.
//
// A row: {"id": ..., "prompt": "text"} or {"messages": [user turn(s), images as in SFT rows]},
// with "answer" (required) and optionally "image": "PATH" (one image before a text prompt).
// Image paths are relative to the JSONL file's folder.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace ovr::rl {

struct PromptRow {
  int64_t index = 0;                       // row number among the usable rows
  std::string id, answer, source;          // source: "FILE:LINE"
  std::vector<model::ChatMessage> messages;
  std::vector<std::string> images;         // resolved paths, in message order
};

std::vector<PromptRow> load_prompts(const std::string& path);

// How the prompt is written before generation:
//   chat: Qwen2.5-VL's chat template with the generation prompt (system prompt by default);
//   orz:  Open-Reasoner-Zero's template around the user text (think / answer tags, boxed answer),
//         inside the chat template's user turn.
std::string apply_prompt_template(const std::string& name, const std::string& user_text);
std::vector<int32_t> prompt_tokens(const model::Tokenizer& tok, const PromptRow& row, const std::string& template_name,
                                   const std::vector<int64_t>& image_pad_counts);

// The rows of iteration k: positions [k*per_iteration, (k+1)*per_iteration) of an endless
// stream of epochs, each a seeded shuffle of all rows (the same on any number of ranks).
std::vector<int64_t> iteration_rows(int64_t rows, int64_t per_iteration, int64_t iteration, uint64_t seed);

// "0:24576,300:32768,700:49152": from iteration 0 the limit is 24576, from 300 on 32768, ...
struct LengthSchedule {
  std::vector<std::pair<int64_t, int64_t>> points;  // (first iteration, max new tokens), increasing
  int64_t at(int64_t iteration) const;
};
LengthSchedule parse_length_schedule(const std::string& text);  // ConfigError on bad text

}  // namespace ovr::rl
