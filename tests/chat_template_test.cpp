// The Qwen2.5-VL chat template: exact ids against Hugging Face's (rows of the reference encodings),
// the default system prompt, image pads, the generation prompt and the assistant (loss) mask.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

using namespace ovr::text;
using json = nlohmann::json;

namespace {

const Tokenizer& qwen() {
  static const Tokenizer tok(std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tokenizer/tokenizer.json");
  return tok;
}

// Ids that Hugging Face gave for `text` in the reference encodings (the chat-format rows).
std::vector<int32_t> reference_ids(const std::string& text) {
  std::ifstream in(std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tokenizer/reference_encodings.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto row = json::parse(line);
    if (row["text"] == text) return row["ids"].get<std::vector<int32_t>>();
  }
  ADD_FAILURE() << "no reference row for " << json(text).dump();
  return {};
}

ChatItem image() { return {ChatItem::Type::Image, {}}; }
ChatItem text(const std::string& s) { return {ChatItem::Type::Text, s}; }

// The masked tokens, one string per run of consecutive masked tokens.
std::vector<std::string> masked_runs(const ChatTokens& t) {
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= t.ids.size(); ++i) {
    if (i < t.ids.size() && t.assistant_mask[i]) {
      run.push_back(t.ids[i]);
    } else if (!run.empty()) {
      runs.push_back(qwen().decode(run));
      run.clear();
    }
  }
  return runs;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ovr::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ChatTemplate, DefaultSystemPromptAndGenerationPrompt) {
  ChatOptions opt;
  opt.add_generation_prompt = true;
  const std::vector<ChatMessage> msgs = {ChatMessage::text("user", "What is 2+2?")};
  const std::string expected_text =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(render_chat(msgs, {}, opt), expected_text);
  const ChatTokens t = apply_chat_template(qwen(), msgs, {}, opt);
  EXPECT_EQ(t.ids, reference_ids(expected_text));
  ASSERT_EQ(t.assistant_mask.size(), t.ids.size());
  for (uint8_t m : t.assistant_mask) EXPECT_EQ(m, 0);  // nothing generated yet
  // The generation prompt is the last three tokens.
  EXPECT_EQ(std::vector<int32_t>(t.ids.end() - 3, t.ids.end()), (std::vector<int32_t>{151644, 77091, 198}));
  opt.add_generation_prompt = false;
  const ChatTokens no_prompt = apply_chat_template(qwen(), msgs, {}, opt);
  EXPECT_EQ(no_prompt.ids, std::vector<int32_t>(t.ids.begin(), t.ids.end() - 3));
}

TEST(ChatTemplate, SystemImageAndAssistantMatchHuggingFace) {
  const std::string question = "Solve the problem. Put the final answer in \\boxed{}.";
  const std::string answer = "The answer is \\boxed{5}.";
  ChatOptions opt;
  opt.add_vision_id = true;
  const std::string expected_text =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nPicture 1: "
      "<|vision_start|><|image_pad|><|vision_end|>" + question + "<|im_end|>\n<|im_start|>assistant\n" + answer +
      "<|im_end|>\n";
  const std::vector<int32_t> expected = reference_ids(expected_text);
  // An explicit system message and the default one give the same conversation.
  for (bool explicit_system : {true, false}) {
    std::vector<ChatMessage> msgs;
    if (explicit_system) msgs.push_back(ChatMessage::text("system", "You are a helpful assistant."));
    msgs.push_back({"user", {image(), text(question)}});
    msgs.push_back(ChatMessage::text("assistant", answer));
    EXPECT_EQ(render_chat(msgs, {1}, opt), expected_text);
    const ChatTokens t = apply_chat_template(qwen(), msgs, {1}, opt);
    EXPECT_EQ(t.ids, expected);
    EXPECT_EQ(masked_runs(t), std::vector<std::string>{answer + "<|im_end|>"});
  }
}

TEST(ChatTemplate, ImagesGetTheirNumberOfPads) {
  const std::vector<ChatMessage> msgs = {{"user", {image(), text("What is shown?"), image()}}};
  const int64_t n0 = image_pad_count(1, 4, 2), n1 = image_pad_count(1, 20, 20);
  EXPECT_EQ(n0, 2);
  EXPECT_EQ(n1, 100);
  const ChatTokens t = apply_chat_template(qwen(), msgs, {n0, n1});
  const Tokenizer& tok = qwen();
  EXPECT_EQ(std::count(t.ids.begin(), t.ids.end(), tok.image_pad_id()), n0 + n1);
  EXPECT_EQ(std::count(t.ids.begin(), t.ids.end(), tok.vision_start_id()), 2);
  EXPECT_EQ(std::count(t.ids.begin(), t.ids.end(), tok.vision_end_id()), 2);
  EXPECT_EQ(t.ids, tok.encode(render_chat(msgs, {n0, n1})));

  // The user turn as HF tokenizes it (a reference row with 4 pads and no trailing newline).
  const std::vector<ChatMessage> four = {{"user", {image(), text("What is shown?")}}};
  const auto ref = reference_ids(
      "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>"
      "What is shown?<|im_end|>");
  const ChatTokens t4 = apply_chat_template(qwen(), four, {4});
  const auto user_start = std::find(t4.ids.begin() + 1, t4.ids.end(), tok.im_start_id());
  ASSERT_LE(size_t(t4.ids.end() - user_start), t4.ids.size());
  EXPECT_EQ(std::vector<int32_t>(user_start, user_start + ref.size()), ref);
  EXPECT_EQ(*(user_start + ref.size()), 198);  // then the "\n" that ends the turn

  EXPECT_THROW(image_pad_count(1, 3, 4), ovr::Error);
}

TEST(ChatTemplate, CustomSystemPromptReplacesTheDefault) {
  const std::vector<ChatMessage> msgs = {ChatMessage::text("system", "Be brief."), ChatMessage::text("user", "Hi")};
  EXPECT_EQ(render_chat(msgs), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(apply_chat_template(qwen(), msgs).ids, qwen().encode(render_chat(msgs)));
  ChatOptions opt;
  opt.default_system_prompt = "Think step by step.";
  EXPECT_EQ(render_chat({ChatMessage::text("user", "Hi")}, {}, opt),
            "<|im_start|>system\nThink step by step.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, MultiTurnAssistantMaskCoversExactlyTheAnswers) {
  const std::vector<std::string> answers = {
      "Four.", "Let x = 2.\nThen x\u00B2 = 4, so \\boxed{4}. caf\u00E9 \u4E2D\u6587 \U0001F600"};
  const std::vector<ChatMessage> msgs = {
      ChatMessage::text("system", "You are a careful solver."),
      ChatMessage::text("user", "What is 2+2?"),
      ChatMessage::text("assistant", answers[0]),
      {"user", {text("And this one? "), image(), text(" Square it.")}},
      ChatMessage::text("assistant", answers[1]),
  };
  const ChatTokens t = apply_chat_template(qwen(), msgs, {6});
  ASSERT_EQ(t.assistant_mask.size(), t.ids.size());
  EXPECT_EQ(t.ids, qwen().encode(render_chat(msgs, {6})));
  EXPECT_EQ(masked_runs(t), (std::vector<std::string>{answers[0] + "<|im_end|>", answers[1] + "<|im_end|>"}));
  // Every assistant turn's <|im_end|> is masked and the "\n" after it is not.
  for (size_t i = 0; i + 1 < t.ids.size(); ++i)
    if (t.assistant_mask[i] && t.ids[i] == qwen().eos_id()) {
      EXPECT_EQ(t.assistant_mask[i + 1], 0);
    }
}

TEST(ChatTemplate, RenderedStringAndIdsAgreeOnHardContent) {
  // Content that meets the template text in unusual ways: the ids must still be those of
  // tokenizing the rendered string, as HF does.
  const std::vector<std::string> contents = {
      "\n\nstarts with blank lines", " leading space", "   ", "", "ends with <", "<|im_end|> inside",
      "combining e\u0301 and A\u030A", "\r\nwindows", "trailing newlines\n\n", "<tool_call>{}</tool_call>"};
  for (const std::string& c : contents) {
    const std::vector<ChatMessage> msgs = {ChatMessage::text("user", c), ChatMessage::text("assistant", c)};
    ChatOptions opt;
    opt.add_generation_prompt = true;
    const ChatTokens t = apply_chat_template(qwen(), msgs, {}, opt);
    EXPECT_EQ(t.ids, qwen().encode(render_chat(msgs, {}, opt))) << json(c).dump();
    ASSERT_EQ(t.assistant_mask.size(), t.ids.size());
  }
}

TEST(ChatTemplate, TokenSpanningHeaderAndAnswerIsAnAssistantToken) {
  // "assistant\n" + "\n\nx": the regex makes one "\n\n\n" token of the header's newline and the
  // answer's two; like HF's character-based mask, it counts as the answer's.
  const ChatTokens t =
      apply_chat_template(qwen(), {ChatMessage::text("user", "q"), ChatMessage::text("assistant", "\n\nx")});
  EXPECT_EQ(masked_runs(t), std::vector<std::string>{"\n\n\nx<|im_end|>"});
}

TEST(ChatTemplate, SpecialTokensInContentCanBeText) {
  const std::vector<ChatMessage> msgs = {ChatMessage::text("user", "say <|im_end|> please")};
  const ChatTokens as_hf = apply_chat_template(qwen(), msgs);
  ChatOptions opt;
  opt.special_tokens_in_content = false;
  const ChatTokens as_text = apply_chat_template(qwen(), msgs, {}, opt);
  const auto eos_count = [](const ChatTokens& t) { return std::count(t.ids.begin(), t.ids.end(), qwen().eos_id()); };
  EXPECT_EQ(eos_count(as_hf), 3);   // system, user, and the one typed in the message
  EXPECT_EQ(eos_count(as_text), 2);
  EXPECT_EQ(qwen().decode(as_text.ids), render_chat(msgs));
}

TEST(ChatTemplate, MessagesFromJson) {
  const auto msgs = chat_messages_from_json(json::parse(R"([
    {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "Describe."}]},
    {"role": "assistant", "content": "A cat."},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "b.png"}}]}])"));
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(render_chat(msgs, {1, 2}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
            "<|vision_end|>Describe.<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|image_pad|><|image_pad|><|vision_end|><|im_end|>\n");
  EXPECT_NE(error_of([] { chat_messages_from_json(json::parse(R"([{"role": "user"}])")); }).find("chat messages[0]"),
            std::string::npos);
  EXPECT_NE(error_of([] { chat_messages_from_json(json::parse(R"([{"role": "user", "content": [{"type": "video"}]}])")); })
                .find("videos are not supported"),
            std::string::npos);
  EXPECT_NE(error_of([] { chat_messages_from_json(json::parse(R"({"role": "user"})")); }).find("expected a list"),
            std::string::npos);
}

TEST(ChatTemplate, Errors) {
  EXPECT_NE(error_of([] { apply_chat_template(qwen(), {ChatMessage::text("tool", "x")}); }).find("role 'tool'"),
            std::string::npos);
  const std::vector<ChatMessage> one_image = {{"user", {image()}}};
  EXPECT_NE(error_of([&] { apply_chat_template(qwen(), one_image, {}); }).find("only 0 image pad counts"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_chat_template(qwen(), one_image, {4, 4}); }).find("2 image pad counts given for 1 images"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_chat_template(qwen(), one_image, {0}); }).find("at least 1"), std::string::npos);
}
