#include "io/jsonl.h"

#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "io/fs.h"

namespace ovr::io {

std::ifstream open_jsonl(const std::string& path) {
  if (is_directory(path)) throw Error(path + ": is a directory (expected a JSONL file)");
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  return in;
}

nlohmann::json parse_json_object(const std::string& line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    std::string why = e.what();  // "[json.exception.parse_error.101] parse error at line 1, column 3: ..."
    const size_t at = why.find("] ");
    if (at != std::string::npos) why = why.substr(at + 2);
    throw Error("not valid JSON (" + why + ")");
  }
  if (!j.is_object()) throw Error(std::string("not a JSON object (") + j.type_name() + ")");
  return j;
}

}  // namespace ovr::io
