// What the evaluation tests share: where the public benchmark files are, and a prompt as text.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "eval/benchmark.h"
#include "text/chat_template.h"

#ifndef OVR_TEST_FIXTURES  // our own fixtures (CMake passes the path)
#define OVR_TEST_FIXTURES "/work/main/tests/fixtures"
#endif
#ifndef OVR_SHARED_FIXTURES
#define OVR_SHARED_FIXTURES "/work/shared/fixtures"
#endif

namespace ovr::eval::test {

// Benchmark files from public repositories are never committed here: they are read from the shared
// fixtures beside the clone (OVR_SHARED_FIXTURES overrides the place), and the tests that need them
// are skipped, saying so, where they are absent.
inline std::string shared_benchmarks() {
  const char* env = std::getenv("OVR_SHARED_FIXTURES");
  return std::string(env && *env ? env : OVR_SHARED_FIXTURES) + "/benchmarks";
}

// The user turn as text, each image shown as <IMG>.
inline std::string user_text(const Problem& p) {
  std::string s;
  for (const auto& item : p.prompt.messages.back().content) s += item.type == text::ChatItem::Type::Image ? "<IMG>" : item.text;
  return s;
}

}  // namespace ovr::eval::test

// Skips the test, naming the file and why, when a shared benchmark file is absent.
#define SKIP_WITHOUT_SHARED(file)                                                                            \
  if (!std::ifstream(ovr::eval::test::shared_benchmarks() + "/" + (file)).good())                            \
  GTEST_SKIP() << ovr::eval::test::shared_benchmarks() << "/" << (file)                                      \
               << " not found (public data, not in the repository: set OVR_SHARED_FIXTURES to the shared fixtures)"
