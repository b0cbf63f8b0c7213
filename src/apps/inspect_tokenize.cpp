// ovr_inspect tokenize: JSONL text <-> token ids through a Hugging Face tokenizer.json.
#include <nlohmann/json.hpp>

#include "apps/inspect_commands.h"
#include "common/config.h"
#include "common/error.h"
#include "common/mpi_runtime.h"
#include "text/tokenizer.h"

namespace ovr::apps {

int inspect_tokenize(int argc, char** argv) {
  Config cfg("ovr_inspect tokenize", "ovr_inspect tokenize --tokenizer PATH [--decode] < in.jsonl > out.jsonl",
             "Tokenizes JSONL from stdin, one object per line: {\"text\": ...} becomes {\"ids\": [...]} (no BOS/EOS\n"
             "added; special tokens written in the text, such as <|im_end|>, become their ids). With --decode,\n"
             "{\"ids\": [...]} becomes {\"text\": ...}. Other fields of a line are ignored. A line that is not such\n"
             "an object ends the run with exit status 1 and an error naming the line number.");
  cfg.options().add_options()
      ("tokenizer", po::value<std::string>()->required(), "tokenizer.json, or a Hugging Face model directory holding one")
      ("decode", po::bool_switch()->default_value(false), "ids -> text instead of text -> ids")
      ("no-special", po::bool_switch()->default_value(false), "encode special-token text (<|im_end|>, ...) as plain text")
      ("skip-special", po::bool_switch()->default_value(false), "--decode: leave special tokens out of the text");
  if (!cfg.parse(argc, argv)) return kExitOk;
  if (world_rank() != 0) return kExitOk;  // stdin reaches rank 0 only
  const text::Tokenizer tok(cfg.get<std::string>("tokenizer"));
  const bool decode = cfg.get<bool>("decode");
  const char* want = decode ? "{\"ids\": [integers]}" : "{\"text\": string}";
  return for_each_stdin_json_line([&](const nlohmann::json& in) {
    nlohmann::ordered_json out;
    if (decode) {
      if (!in.is_object() || !in.contains("ids") || !in["ids"].is_array()) throw Error(std::string("expected ") + want);
      std::vector<int32_t> ids;
      for (const auto& id : in["ids"]) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tok.vocab_size())
          throw Error("\"ids\" holds " + id.dump() + ", not a token id (0.." + std::to_string(tok.vocab_size() - 1) + ")");
        ids.push_back(id.get<int32_t>());
      }
      out["text"] = tok.decode(ids, cfg.get<bool>("skip-special"));
    } else {
      if (!in.is_object() || !in.contains("text") || !in["text"].is_string()) throw Error(std::string("expected ") + want);
      out["ids"] = tok.encode(in["text"].get<std::string>(), !cfg.get<bool>("no-special"));
    }
    return out;
  });
}

}  // namespace ovr::apps
