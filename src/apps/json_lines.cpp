#include <cstdio>
#include <iostream>
#include <string>

#include "apps/inspect_commands.h"
#include "common/error.h"
#include "io/jsonl.h"

namespace ovr::apps {

int for_each_stdin_json_line(const std::function<nlohmann::ordered_json(const nlohmann::json& in)>& row) {
  std::string line;
  for (long n = 1; std::getline(std::cin, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines
    const std::string where = "stdin line " + std::to_string(n);
    std::string text;
    try {
      text = row(io::parse_json_object(line)).dump() + "\n";
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  if (std::cin.bad()) throw Error("stdin: read error");
  return kExitOk;
}

}  // namespace ovr::apps
