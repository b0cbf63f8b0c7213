// Reading JSONL files (training rows, prompts, benchmarks) with errors that name what is wrong:
// a missing file, a directory given as a file, a line that is not JSON, or JSON that is not an
// object.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace ovr::io {

// ovr::Error naming `path` when it is missing, a directory or unreadable.
std::ifstream open_jsonl(const std::string& path);

// One line as a JSON object: ovr::Error "not valid JSON (the parser's message)" or "not a JSON
// object (an array)" without the location (the caller adds FILE:LINE).
nlohmann::json parse_json_object(const std::string& line);

}  // namespace ovr::io
