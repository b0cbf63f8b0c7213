// ovr_inspect: look inside our files and models. Sub-commands:
//   checkpoint PATH   tensors, dtypes, shapes, attributes and integrity of a checkpoint
//                     (an ovr HDF5 file or checkpoint directory, a safetensors file, or a HF directory)
//   tokenize          JSONL on stdin -> JSONL on stdout: {"text"} -> {"ids"}, or back with --decode
//   generate          generate from a checkpoint: ids, text, log-probs and finish reason as JSON
//   image             Qwen2.5-VL image processor: resized size, grid_thw, image tokens (JSON lines)
//   reward            JSONL on stdin -> JSONL on stdout: {"response", "answer"} -> {"reward", "extracted", "reason"}
#include <cstdio>
#include <map>
#include <string>

#include "apps/inspect_commands.h"
#include "common/error.h"
#include "common/mpi_runtime.h"

using namespace ovr;

namespace {

const std::map<std::string, int (*)(int, char**)> kCommands = {
    {"checkpoint", apps::inspect_checkpoint},
    {"tokenize", apps::inspect_tokenize},
    {"generate", apps::inspect_generate},
    {"image", apps::inspect_image},
    {"reward", apps::inspect_reward},
};

int inspect_main(int argc, char** argv) {
  auto usage = [] {
    std::string s = "usage: ovr_inspect COMMAND [options]   (ovr_inspect COMMAND --help for details)\ncommands:";
    for (const auto& [name, fn] : kCommands) s += " " + name;
    return s;
  };
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    if (argc < 2) throw ConfigError("no command given\n" + usage());
    if (world_rank() == 0) std::printf("%s\n", usage().c_str());
    return kExitOk;
  }
  auto it = kCommands.find(argv[1]);
  if (it == kCommands.end()) throw ConfigError("unknown command '" + std::string(argv[1]) + "'\n" + usage());
  return it->second(argc - 1, argv + 1);
}

}  // namespace

int main(int argc, char** argv) { return run_main("ovr_inspect", argc, argv, inspect_main); }
