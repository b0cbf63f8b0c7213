#include "text/chat_template.h"

#include "common/error.h"

namespace ovr::text {

namespace {

enum class Special { ImStart, ImEnd, VisionStart, ImagePad, VisionEnd };

const char* special_text(Special s) {
  switch (s) {
    case Special::ImStart: return "<|im_start|>";
    case Special::ImEnd: return "<|im_end|>";
    case Special::VisionStart: return "<|vision_start|>";
    case Special::ImagePad: return "<|image_pad|>";
    case Special::VisionEnd: return "<|vision_end|>";
  }
  return "";
}

// Walks the template once for both outputs, so the string and the ids cannot disagree. The
// sink gets: plain(text) for template text that is never an assistant token (role headers, the
// newline after <|im_end|>), content(text, assistant) for message text, special(token, n,
// assistant) for n copies of a special token.
template <class Sink>
void walk(const std::vector<ChatMessage>& messages, const std::vector<int64_t>& pads, const ChatOptions& options,
          Sink& sink) {
  auto turn = [&](const std::string& role, auto&& body) {
    const bool assistant = role == "assistant";
    sink.special(Special::ImStart, 1, false);
    sink.plain(role + "\n");
    body(assistant);
    sink.special(Special::ImEnd, 1, assistant);
    sink.plain("\n");
  };
  if (messages.empty() || messages[0].role != "system")
    turn("system", [&](bool) { sink.content(options.default_system_prompt, false); });
  size_t image = 0;
  for (size_t m = 0; m < messages.size(); ++m) {
    const ChatMessage& msg = messages[m];
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw Error("chat template: message " + std::to_string(m) + " has role '" + msg.role +
                  "' (expected system, user or assistant)");
    turn(msg.role, [&](bool assistant) {
      for (const ChatItem& item : msg.content) {
        if (item.type == ChatItem::Type::Text) {
          sink.content(item.text, assistant);
          continue;
        }
        if (image >= pads.size())
          throw Error("chat template: message " + std::to_string(m) + " holds image " + std::to_string(image + 1) +
                      " but only " + std::to_string(pads.size()) + " image pad counts were given");
        if (pads[image] < 1)
          throw Error("chat template: image " + std::to_string(image + 1) + " has " + std::to_string(pads[image]) +
                      " pad tokens (at least 1)");
        if (options.add_vision_id) sink.content("Picture " + std::to_string(image + 1) + ": ", assistant);
        sink.special(Special::VisionStart, 1, false);
        sink.special(Special::ImagePad, pads[image], false);
        sink.special(Special::VisionEnd, 1, false);
        ++image;
      }
    });
  }
  if (image != pads.size())
    throw Error("chat template: " + std::to_string(pads.size()) + " image pad counts given for " + std::to_string(image) +
                " images");
  if (options.add_generation_prompt) {
    sink.special(Special::ImStart, 1, false);
    sink.plain("assistant\n");
  }
}

struct TextSink {
  std::string out;
  void plain(const std::string& s) { out += s; }
  void content(const std::string& s, bool) { out += s; }
  void special(Special s, int64_t n, bool) {
    for (int64_t i = 0; i < n; ++i) out += special_text(s);
  }
};

// Collects the text between two special tokens and encodes it in one piece, as HF does with
// the rendered string. The piece starts with template text (a role header or "\n", at most)
// followed by message text; its tokens are assistant tokens when they reach past the template
// text and the message is the assistant's.
struct TokenSink {
  const Tokenizer& tok;
  bool allow_special;
  ChatTokens out;
  std::string pending;
  size_t plain_bytes = 0;  // how much of `pending` is template text
  bool pending_assistant = false;

  void plain(const std::string& s) {
    pending += s;
    plain_bytes = pending.size();
  }
  void content(const std::string& s, bool assistant) {
    pending += s;
    pending_assistant = pending_assistant || assistant;
  }
  void special(Special s, int64_t n, bool assistant) {
    flush();
    int32_t id = -1;
    switch (s) {
      case Special::ImStart: id = tok.im_start_id(); break;
      case Special::ImEnd: id = tok.im_end_id(); break;
      case Special::VisionStart: id = tok.vision_start_id(); break;
      case Special::ImagePad: id = tok.image_pad_id(); break;
      case Special::VisionEnd: id = tok.vision_end_id(); break;
    }
    out.ids.insert(out.ids.end(), size_t(n), id);
    out.assistant_mask.insert(out.assistant_mask.end(), size_t(n), assistant ? 1 : 0);
  }
  void flush() {
    if (pending.empty()) return;
    const size_t first = out.ids.size();
    tok.encode_append(pending, out.ids, allow_special);
    // Token byte lengths add up to the (normalised) piece. NFC leaves the ASCII template text at
    // its start as it is, so the first plain_bytes bytes are exactly the template text.
    size_t end = 0;
    for (size_t i = first; i < out.ids.size(); ++i) {
      end += tok.token_bytes(out.ids[i]).size();
      out.assistant_mask.push_back(pending_assistant && end > plain_bytes ? 1 : 0);
    }
    pending.clear();
    plain_bytes = 0;
    pending_assistant = false;
  }
};

}  // namespace

ChatTokens apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                               const std::vector<int64_t>& image_pad_counts, const ChatOptions& options) {
  TokenSink sink{tok, options.special_tokens_in_content, {}, {}, 0, false};
  walk(messages, image_pad_counts, options, sink);
  sink.flush();
  return std::move(sink.out);
}

std::string render_chat(const std::vector<ChatMessage>& messages, const std::vector<int64_t>& image_pad_counts,
                        const ChatOptions& options) {
  TextSink sink;
  walk(messages, image_pad_counts, options, sink);
  return std::move(sink.out);
}

std::vector<ChatMessage> chat_messages_from_json(const nlohmann::json& messages) {
  if (!messages.is_array()) throw Error("chat messages: expected a list of {\"role\", \"content\"} objects");
  std::vector<ChatMessage> out;
  for (size_t m = 0; m < messages.size(); ++m) {
    const auto& j = messages[m];
    const std::string where = "chat messages[" + std::to_string(m) + "]";
    if (!j.is_object() || !j.contains("role") || !j["role"].is_string() || !j.contains("content"))
      throw Error(where + ": expected {\"role\": string, \"content\": string or list}");
    ChatMessage msg{j["role"].get<std::string>(), {}};
    const auto& content = j["content"];
    if (content.is_string()) {
      msg.content.push_back({ChatItem::Type::Text, content.get<std::string>()});
    } else if (content.is_array()) {
      for (size_t k = 0; k < content.size(); ++k) {
        const auto& item = content[k];
        const std::string type = item.is_object() ? item.value("type", std::string()) : std::string();
        // The template's own tests: an image is type "image" or has an "image"/"image_url" key.
        const bool has = item.is_object();
        if (type == "image" || type == "image_url" || (has && (item.contains("image") || item.contains("image_url"))))
          msg.content.push_back({ChatItem::Type::Image, {}});
        else if (type == "video" || (has && item.contains("video")))
          throw Error(where + ".content[" + std::to_string(k) + "]: videos are not supported");
        else if (has && item.contains("text") && item["text"].is_string())
          msg.content.push_back({ChatItem::Type::Text, item["text"].get<std::string>()});
        else
          throw Error(where + ".content[" + std::to_string(k) +
                      "]: expected {\"type\": \"text\", \"text\": ...} or an image");
      }
    } else {
      throw Error(where + ": content is neither a string nor a list");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<std::string> chat_image_sources(const nlohmann::json& messages) {
  std::vector<std::string> out;
  for (const auto& j : messages) {
    if (!j["content"].is_array()) continue;
    for (const auto& item : j["content"]) {
      const std::string type = item.value("type", std::string());
      if (type != "image" && type != "image_url" && !item.contains("image") && !item.contains("image_url")) continue;
      std::string src;
      if (item.contains("image") && item["image"].is_string()) src = item["image"].get<std::string>();
      else if (item.contains("image_url") && item["image_url"].is_string()) src = item["image_url"].get<std::string>();
      else if (item.contains("image_url") && item["image_url"].is_object() && item["image_url"].value("url", nlohmann::json()).is_string())
        src = item["image_url"]["url"].get<std::string>();
      out.push_back(src);
    }
  }
  return out;
}

int64_t image_pad_count(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge_size) {
  const int64_t patches = grid_t * grid_h * grid_w, per_token = merge_size * merge_size;
  if (grid_t < 1 || grid_h < 1 || grid_w < 1 || merge_size < 1 || grid_h % merge_size || grid_w % merge_size)
    throw Error("image grid " + std::to_string(grid_t) + "x" + std::to_string(grid_h) + "x" + std::to_string(grid_w) +
                " does not divide into " + std::to_string(merge_size) + "x" + std::to_string(merge_size) +
                " merged tokens");
  return patches / per_token;
}

}  // namespace ovr::text
