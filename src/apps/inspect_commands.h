// The sub-commands of ovr_inspect, one file each; each parses its own options (argv[0] is the
// sub-command's name) and returns an exit status.
#pragma once

namespace ovr::apps {

int inspect_checkpoint(int argc, char** argv);  // inspect_checkpoint.cpp
int inspect_tokenize(int argc, char** argv);    // inspect_tokenize.cpp
int inspect_generate(int argc, char** argv);    // inspect_generate.cpp
int inspect_image(int argc, char** argv);       // inspect_image.cpp
int inspect_reward(int argc, char** argv);      // inspect_reward.cpp

}  // namespace ovr::apps
