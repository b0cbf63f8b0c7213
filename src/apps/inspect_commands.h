// The sub-commands of ovr_inspect, one file each; each parses its own options (argv[0] is the
// sub-command's name) and returns an exit status.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>

namespace ovr::apps {

// The filters' loop (tokenize, reward): one JSON object per stdin line in, `row`'s object out as
// one stdout line, flushed (interactive use). Blank lines are skipped; a line that is not JSON, or
// that `row` rejects with ovr::Error, ends the run with "stdin line N: ..." (exit status 1).
int for_each_stdin_json_line(const std::function<nlohmann::ordered_json(const nlohmann::json& in)>& row);

int inspect_checkpoint(int argc, char** argv);  // inspect_checkpoint.cpp
int inspect_tokenize(int argc, char** argv);    // inspect_tokenize.cpp
int inspect_generate(int argc, char** argv);    // inspect_generate.cpp
int inspect_image(int argc, char** argv);       // inspect_image.cpp
int inspect_reward(int argc, char** argv);      // inspect_reward.cpp

}  // namespace ovr::apps
