#include "engine/prompt.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/fs.h"
#include "io/jsonl.h"

namespace ovr::engine {

std::vector<PromptRow> load_prompts(const std::string& path) {
  std::ifstream in = io::open_jsonl(path);
  const std::string dir = io::parent_dir(path);
  std::vector<PromptRow> rows;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    try {
      const nlohmann::json j = io::parse_json_object(line);
      PromptRow row;
      row.index = int64_t(rows.size());
      row.source = where;
      if (!j.contains("answer")) throw Error("no \"answer\"");
      row.answer = j["answer"].is_string() ? j["answer"].get<std::string>() : j["answer"].dump();
      row.id = !j.contains("id") ? std::to_string(n) : j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
      std::vector<std::string> images;
      if (j.contains("messages")) {
        row.messages = text::chat_messages_from_json(j["messages"]);
        images = text::chat_image_sources(j["messages"]);
      } else if (j.contains("prompt") && j["prompt"].is_string()) {
        text::ChatMessage user = text::ChatMessage::text("user", j["prompt"].get<std::string>());
        if (j.contains("image")) {
          if (!j["image"].is_string()) throw Error("\"image\" must be a path");
          user.content.insert(user.content.begin(), text::ChatItem{text::ChatItem::Type::Image, ""});
          images.push_back(j["image"].get<std::string>());
        }
        row.messages.push_back(user);
      } else {
        throw Error("expected \"prompt\" (text) or \"messages\"");
      }
      for (const auto& m : row.messages)
        if (m.role == "assistant") throw Error("a prompt must not hold an assistant turn");
      for (const std::string& s : images) {
        if (s.empty()) throw Error("an image item names no file");
        row.images.push_back(s.front() == '/' ? s : io::join_path(dir, s));
      }
      rows.push_back(std::move(row));
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  if (rows.empty()) throw Error(path + ": no prompts");
  return rows;
}

std::string apply_prompt_template(const std::string& name, const std::string& user_text) {
  if (name == "chat") return user_text;
  if (name == "orz")  // Open-Reasoner-Zero's instruction, adapted to a chat turn
    return "You must first think about the reasoning process in the mind and then provide the answer. The reasoning "
           "process is enclosed within <think> </think> and the answer within <answer> </answer> tags, i.e., <think> "
           "reasoning process here </think> <answer> answer here </answer>. Put your final answer inside \\boxed{} "
           "within the answer tags.\n" + user_text;
  throw ConfigError("--prompt-template: expected chat or orz, got '" + name + "'");
}

std::vector<int32_t> prompt_tokens(const text::Tokenizer& tok, const PromptRow& row, const std::string& template_name,
                                   const std::vector<int64_t>& image_pad_counts) {
  std::vector<text::ChatMessage> messages = row.messages;
  // The template wraps the text of the last user turn.
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role != "user") continue;
    for (auto& item : it->content)
      if (item.type == text::ChatItem::Type::Text) item.text = apply_prompt_template(template_name, item.text);
    break;
  }
  text::ChatOptions chat;
  chat.add_generation_prompt = true;
  return text::apply_chat_template(tok, messages, image_pad_counts, chat).ids;
}

}  // namespace ovr::engine
