// The tokenizer against Hugging Face's: every row of the reference encodings and regex splits,
// decoding (round trip, invalid UTF-8), special tokens, BPE merge paths and load errors.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/error.h"
#include "text/bpe.h"
#include "text/split_regex.h"
#include "text/tokenizer.h"

using ovr::text::BpeMerges;
using ovr::text::SplitRegex;
using ovr::text::Tokenizer;
using json = nlohmann::json;

namespace {

std::string fixture(const std::string& name) { return std::string(OVR_TEST_FIXTURES) + "/qwen2_5_vl_tokenizer/" + name; }

// Loaded once: parsing the 6 MB tokenizer.json is the slowest step of these tests.
const Tokenizer& qwen() {
  static const Tokenizer tok(fixture("tokenizer.json"));
  return tok;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

std::string ids_text(const std::vector<int32_t>& ids) { return json(ids).dump(); }

// The id of the byte-level token for one raw byte.
int32_t byte_token(uint8_t b) {
  static const std::map<uint8_t, int32_t> ids = [] {
    std::map<uint8_t, int32_t> m;
    for (int32_t id = 0; id < qwen().vocab_size() && m.size() < 256; ++id)
      if (qwen().token_bytes(id).size() == 1) m.emplace(uint8_t(qwen().token_bytes(id)[0]), id);
    return m;
  }();
  return ids.at(b);
}

std::vector<int32_t> byte_tokens(const std::string& bytes) {
  std::vector<int32_t> ids;
  for (unsigned char b : bytes) ids.push_back(byte_token(b));
  return ids;
}

std::string write_temp(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/ovr_tokenizer_test_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string load_error(const std::string& path) {
  try {
    Tokenizer t(path);
  } catch (const ovr::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Tokenizer, ReproducesEveryReferenceEncoding) {
  const auto rows = read_jsonl(fixture("reference_encodings.jsonl"));
  ASSERT_GT(rows.size(), 200u);
  std::string failures;
  int bad = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string text = rows[i]["text"];
    const auto expected = rows[i]["ids"].get<std::vector<int32_t>>();
    const auto got = qwen().encode(text);
    if (got == expected) continue;
    ++bad;
    failures += "  row " + std::to_string(i + 1) + " [" + rows[i]["category"].get<std::string>() + "] " +
                json(text).dump() + "\n    expected " + ids_text(expected) + "\n    got      " + ids_text(got) + "\n";
  }
  EXPECT_EQ(bad, 0) << bad << " of " << rows.size() << " rows differ:\n" << failures;
}

TEST(Tokenizer, ReproducesEveryReferenceRegexSplit) {
  const auto rows = read_jsonl(fixture("pretokenize_reference.jsonl"));
  ASSERT_GT(rows.size(), 30u);
  std::map<std::string, SplitRegex> regexes;  // the rows use two spellings of Qwen's pattern
  std::string failures;
  int bad = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    // "Removed" with invert=true keeps exactly the matches, which is what Isolated keeps for a
    // pattern that matches everywhere: so one splitter covers both behaviours.
    ASSERT_EQ(row["behavior"], "Removed");
    ASSERT_EQ(row["invert"], true);
    const std::string pattern = row["pattern"];
    auto it = regexes.find(pattern);
    if (it == regexes.end()) it = regexes.emplace(pattern, SplitRegex(pattern)).first;
    const std::string input = row["input"];
    std::vector<std::string_view> views;
    it->second.split(input, views);
    const std::vector<std::string> got(views.begin(), views.end());
    const auto expected = row["pieces"].get<std::vector<std::string>>();
    // The tokenizer's own split (the pattern read from tokenizer.json) must agree as well.
    const auto from_tokenizer = qwen().pre_tokenize(input);
    if (got == expected && from_tokenizer == expected) continue;
    ++bad;
    failures += "  row " + std::to_string(i + 1) + " [" + row["pattern_id"].get<std::string>() + "] " + json(input).dump() +
                "\n    expected " + json(expected).dump() + "\n    got      " + json(got).dump() +
                "\n    tokenizer " + json(from_tokenizer).dump() + "\n";
  }
  EXPECT_EQ(bad, 0) << bad << " of " << rows.size() << " rows differ:\n" << failures;
}

TEST(Tokenizer, WhiteSpaceIsUnicodeWhiteSpace) {
  // U+0085 is White_Space (PCRE2 agrees); U+180E is not since Unicode 6.3 (PCRE2's \s says it is);
  // U+FEFF is not. Pieces as HF tokenizers 0.23 splits them.
  EXPECT_EQ(qwen().pre_tokenize("a\u180Eb \u180E  x \u0085\u0085y"),
            (std::vector<std::string>{"a", "\u180Eb", " \u180E", " ", " x", " \u0085", "\u0085y"}));
  EXPECT_EQ(qwen().pre_tokenize("\uFEFF \u00A0\u00A0z"), (std::vector<std::string>{"\uFEFF", " \u00A0", "\u00A0z"}));
}

TEST(Tokenizer, DecodeOfEncodeGivesTheNfcText) {
  std::string failures;
  for (const auto& row : read_jsonl(fixture("reference_encodings.jsonl"))) {
    const std::string text = row["text"];
    const std::string back = qwen().decode(qwen().encode(text));
    if (back != qwen().normalize(text)) failures += "  " + json(text).dump() + " -> " + json(back).dump() + "\n";
    // The reference ids decode to the same text.
    EXPECT_EQ(qwen().decode(row["ids"].get<std::vector<int32_t>>()), back) << json(text).dump();
  }
  EXPECT_EQ(failures, "");
}

TEST(Tokenizer, NormalisesToNfcBeforeSplitting) {
  EXPECT_EQ(qwen().normalize("e\u0301 A\u030A \u212B"), "\u00E9 \u00C5 \u00C5");
  EXPECT_EQ(qwen().encode("caf" "e\u0301"), qwen().encode("caf\u00E9"));
  EXPECT_EQ(qwen().normalize("plain ascii"), "plain ascii");
  // Hangul syllables compose from jamo.
  EXPECT_EQ(qwen().normalize("\u1100\u1161"), "\uAC00");
}

TEST(Tokenizer, SpecialTokensSplitTheText) {
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.eos_id(), 151645);
  EXPECT_EQ(t.im_end_id(), 151645);
  EXPECT_EQ(t.pad_id(), 151643);
  EXPECT_EQ(t.im_start_id(), 151644);
  EXPECT_EQ(t.vision_start_id(), 151652);
  EXPECT_EQ(t.vision_end_id(), 151653);
  EXPECT_EQ(t.image_pad_id(), 151655);
  EXPECT_EQ(t.vocab_size(), 151665);

  // Text on each side of a special token is tokenised on its own: " x" keeps its space.
  std::vector<int32_t> expected = t.encode("hello");
  expected.push_back(t.eos_id());
  for (int32_t id : t.encode(" x")) expected.push_back(id);
  EXPECT_EQ(t.encode("hello<|im_end|> x"), expected);

  // Without special tokens they are plain text, but the non-special added tokens still match.
  const auto plain = t.encode("<|im_end|>", false);
  EXPECT_EQ(t.decode(plain), "<|im_end|>");
  EXPECT_GT(plain.size(), 1u);
  for (int32_t id : plain) EXPECT_FALSE(t.is_special(id));
  EXPECT_EQ(t.encode("<tool_call>", false), std::vector<int32_t>{151657});

  // Leftmost-longest; a near miss is text.
  EXPECT_EQ(t.encode("<|im_start|><|im_end|>"), (std::vector<int32_t>{151644, 151645}));
  EXPECT_EQ(t.encode("<|im_end"), t.encode("<|im_end", false));

  EXPECT_EQ(t.decode({151644, 77091, 198, 151645}, true), "assistant\n");
  EXPECT_EQ(t.decode({151657, 151645}, true), "<tool_call>");  // <tool_call> is not special
}

TEST(Tokenizer, TokenLookups) {
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.token_to_id("\u0120world"), std::optional<int32_t>(1879));  // "Ġworld"
  EXPECT_EQ(t.id_to_token(1879), "\u0120world");
  EXPECT_EQ(t.token_bytes(1879), " world");
  EXPECT_EQ(t.token_to_id("<|image_pad|>"), std::optional<int32_t>(151655));
  EXPECT_EQ(t.id_to_token(151655), "<|image_pad|>");
  EXPECT_FALSE(t.token_to_id("no such token").has_value());
  EXPECT_THROW(t.id_to_token(-1), ovr::Error);
  EXPECT_THROW(t.id_to_token(t.vocab_size()), ovr::Error);
  EXPECT_TRUE(t.is_special(151645));
  EXPECT_FALSE(t.is_special(151657));
  EXPECT_FALSE(t.is_special(1879));
}

TEST(Tokenizer, InvalidUtf8DecodesToReplacementCharacters) {
  const Tokenizer& t = qwen();
  // One U+FFFD per maximal invalid subsequence, as Rust's from_utf8_lossy and Python's "replace".
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(t.decode(byte_tokens("a\xE4\xB8z")), "a" + fffd + "z");              // truncated 3-byte
  EXPECT_EQ(t.decode(byte_tokens("\xE4\xB8\xAD")), "\u4E2D");                    // complete: 中
  EXPECT_EQ(t.decode(byte_tokens("\xC0\x80")), fffd + fffd);                      // overlong
  EXPECT_EQ(t.decode(byte_tokens("\xF0\x80\x80")), fffd + fffd + fffd);           // bad second byte
  EXPECT_EQ(t.decode(byte_tokens("\xED\xA0\x80")), fffd + fffd + fffd);           // surrogate
  EXPECT_EQ(t.decode(byte_tokens("\xF4\x90\x80\x80")), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(t.decode(byte_tokens("\xF0\x9F\x98")), fffd);                         // truncated emoji
  EXPECT_EQ(t.decode(byte_tokens("\xFF" "ok")), fffd + "ok");
  // Ids with no token are skipped, as HF does.
  EXPECT_EQ(t.decode({-5, 9707, 999999}), "Hello");
}

TEST(Tokenizer, RejectsInvalidUtf8Input) {
  try {
    qwen().encode("ok\xC3(");
    FAIL() << "no error";
  } catch (const ovr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, LongInputs) {
  // Long pre-tokens take the heap merge (BpeMerges::kSmallWord), and long whitespace runs make
  // the regex backtrack (\s*[\r\n]+ and \s+(?!\S) over the whole run); both must work.
  std::string letters;
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) letters += char('a' + rng() % 26);
  const std::string spaces(1 << 16, ' ');
  std::string cjk;
  for (int i = 0; i < 5000; ++i) cjk += "\u4E2D\u6587\u5B57";
  for (const std::string& text : {letters, spaces + "x", cjk, spaces + "\n" + spaces}) {
    const auto ids = qwen().encode(text);
    EXPECT_EQ(qwen().decode(ids), text);
    EXPECT_LT(ids.size(), text.size());
  }
  // A megabyte of whitespace splits into the pieces HF gives: the run minus its last space, then
  // that space joined to the word after it.
  const std::string mb(1 << 20, ' ');
  EXPECT_EQ(qwen().pre_tokenize(mb + "x"), (std::vector<std::string>{mb.substr(1), " x"}));
  EXPECT_EQ(qwen().pre_tokenize(mb + "\n" + mb), (std::vector<std::string>{mb + "\n", mb}));
}

TEST(Tokenizer, EncodesFromSeveralThreadsAtOnce) {
  // encode is const and shares the word cache: threads must get what one thread gets.
  std::vector<std::string> texts;
  for (const auto& row : read_jsonl(fixture("reference_encodings.jsonl"))) texts.push_back(row["text"]);
  const Tokenizer fresh(fixture("tokenizer.json"));  // an empty cache, filled concurrently
  std::vector<std::vector<std::vector<int32_t>>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 7 + t * 13) % texts.size();  // different orders per thread
          if (round == 0 && got[t].empty()) got[t].resize(texts.size());
          got[t][k] = fresh.encode(texts[k]);
        }
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t)
    for (size_t i = 0; i < texts.size(); ++i) ASSERT_EQ(got[t][i], qwen().encode(texts[i])) << "thread " << t;
}

TEST(Bpe, SmallAndHeapMergesAgree) {
  // A random merge table over a 6-letter alphabet: merged ids are new ids, ranks in order.
  std::mt19937 rng(123);
  BpeMerges merges;
  int32_t next = 6;
  std::vector<int32_t> known = {0, 1, 2, 3, 4, 5};
  std::map<std::pair<int32_t, int32_t>, bool> used;
  for (int i = 0; i < 400; ++i) {
    const int32_t a = known[rng() % known.size()], b = known[rng() % known.size()];
    if (used[{a, b}]) continue;
    used[{a, b}] = true;
    merges.add(a, b, next);
    known.push_back(next++);
  }
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int32_t> word(1 + rng() % 120);
    for (auto& x : word) x = int32_t(rng() % 6);
    auto small = word, heap = word;
    merges.merge_small(small);
    merges.merge_heap(heap);
    ASSERT_EQ(small, heap) << "trial " << trial << " length " << word.size();
  }
}

TEST(Bpe, LowestRankFirstLeftmostOnTies) {
  BpeMerges m;
  m.add(0, 0, 10);   // rank 0: "aa"
  m.add(10, 0, 11);  // rank 1: "aa"+"a"
  for (auto fn : {&BpeMerges::merge_small, &BpeMerges::merge_heap}) {
    std::vector<int32_t> w = {0, 0, 0};  // "aaa": the left pair merges first, then "aa"+"a"
    (m.*fn)(w);
    EXPECT_EQ(w, std::vector<int32_t>{11});
    w = {0, 0, 0, 0};  // "aaaa" -> "aa","aa" (rank 0 twice) and then nothing joins two "aa"
    (m.*fn)(w);
    EXPECT_EQ(w, (std::vector<int32_t>{10, 10}));
  }
}

TEST(Tokenizer, LoadErrorsNameTheFileAndTheProblem) {
  const std::string missing = ::testing::TempDir() + "/no_such_dir/tokenizer.json";
  EXPECT_NE(load_error(missing).find(missing), std::string::npos);
  EXPECT_NE(load_error(missing).find("no such file"), std::string::npos);

  const std::string bad_json = write_temp("bad.json", "{\"model\": {");
  EXPECT_NE(load_error(bad_json).find(bad_json + ": not valid JSON"), std::string::npos) << load_error(bad_json);

  const std::string no_model = write_temp("no_model.json", "{\"added_tokens\": []}");
  EXPECT_NE(load_error(no_model).find(no_model + ": no \"model\""), std::string::npos) << load_error(no_model);

  // A small valid-looking file with one broken piece at a time.
  json doc = json::parse(R"({
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+|\\S+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
    "added_tokens": [],
    "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  // Without byte tokens the vocabulary is not byte-level.
  const std::string no_bytes = write_temp("no_bytes.json", doc.dump());
  EXPECT_NE(load_error(no_bytes).find("no token for byte 0"), std::string::npos) << load_error(no_bytes);

  // Take the real vocabulary's byte tokens to build a minimal working file.
  for (int32_t id = 0; id < qwen().vocab_size(); ++id)
    if (qwen().token_bytes(id).size() == 1 && id < 151643) doc["model"]["vocab"][qwen().id_to_token(id)] = id;
  for (const char* t :
       {"<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"})
    doc["added_tokens"].push_back(
        {{"id", *qwen().token_to_id(t)}, {"content", t}, {"special", true}, {"normalized", false}});
  const std::string minimal = write_temp("minimal.json", doc.dump());
  EXPECT_EQ(load_error(minimal), "(no error)");
  EXPECT_EQ(Tokenizer(minimal).decode(Tokenizer(minimal).encode("byte by byte <|im_end|>")), "byte by byte <|im_end|>");

  json bad_merge = doc;
  bad_merge["model"]["merges"] = json::array({json::array({"a", "zz"})});
  const std::string merge_path = write_temp("bad_merge.json", bad_merge.dump());
  EXPECT_NE(load_error(merge_path).find("model.merges[0]"), std::string::npos) << load_error(merge_path);

  json bad_regex = doc;
  bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  const std::string regex_path = write_temp("bad_regex.json", bad_regex.dump());
  EXPECT_NE(load_error(regex_path).find("pre_tokenizer: regex '(unclosed' does not compile"), std::string::npos)
      << load_error(regex_path);

  json wordpiece = doc;
  wordpiece["model"]["type"] = "WordPiece";
  const std::string wp_path = write_temp("wordpiece.json", wordpiece.dump());
  EXPECT_NE(load_error(wp_path).find("model.type"), std::string::npos) << load_error(wp_path);

  json no_eos = doc;
  no_eos["added_tokens"].erase(0);
  const std::string eos_path = write_temp("no_eos.json", no_eos.dump());
  EXPECT_NE(load_error(eos_path).find("no added token \"<|im_end|>\""), std::string::npos) << load_error(eos_path);

  json wrong_type = doc;
  wrong_type["added_tokens"][0]["id"] = "seven";
  const std::string type_path = write_temp("wrong_type.json", wrong_type.dump());
  EXPECT_NE(load_error(type_path).find("added_tokens[0]"), std::string::npos) << load_error(type_path);
}
