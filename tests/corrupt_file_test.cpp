// Damaged files, as the executables see them: truncated and bit-flipped HDF5 checkpoints and
// malformed safetensors give one clear error line and exit status 1, never a signal, and never
// silently different numbers.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "io/safetensors.h"
#include "test_util.h"

using namespace ovr;

namespace {

struct Fixture {
  std::string dir, h5, reference;
};

// A small model converted to HDF5, and its tensors converted back as the reference bytes.
Fixture make_fixture(const std::string& tag) {
  Fixture f;
  f.dir = test::temp_dir(tag);
  test::write_hf_model(f.dir + "/hf", test::small_model_tensors(), 5, 1 << 30);
  std::string out;
  EXPECT_EQ(test::run_command(std::string(OVR_CONVERT) + " " + f.dir + "/hf " + f.dir + "/model.h5", &out), 0) << out;
  EXPECT_EQ(test::run_command(std::string(OVR_CONVERT) + " " + f.dir + "/model.h5 " + f.dir + "/ref.safetensors", &out), 0) << out;
  f.h5 = test::read_file(f.dir + "/model.h5");
  f.reference = test::read_file(f.dir + "/ref.safetensors");
  return f;
}

// Converts a damaged copy; returns the exit status and checks the outcome is one of the two
// acceptable ones: a clean error, or success with exactly the original numbers.
int convert_damaged(const Fixture& f, const std::string& bytes, const std::string& what) {
  const std::string bad = f.dir + "/bad.h5", out_path = f.dir + "/out.safetensors";
  test::write_file(bad, bytes);
  test::run_command("rm -f " + out_path);
  std::string out;
  const int status = test::run_command(std::string(OVR_CONVERT) + " " + bad + " " + out_path, &out);
  EXPECT_TRUE(status == 0 || status == 1) << what << ": exit status " << status << "\n" << out;
  if (status == 0) {
    EXPECT_EQ(test::read_file(out_path), f.reference) << what << ": success with different numbers";
  } else {
    EXPECT_NE(out.find("ovr_convert: error: "), std::string::npos) << what << "\n" << out;
    EXPECT_NE(out.find(bad), std::string::npos) << what << ": the error must name the file\n" << out;
  }
  return status;
}

}  // namespace

TEST(CorruptFile, TruncatedCheckpointIsAnErrorNamingTheFile) {
  Fixture f = make_fixture("corrupt_trunc");
  for (size_t cut : {size_t(0), size_t(1), size_t(8), size_t(64), size_t(512), f.h5.size() / 3, f.h5.size() / 2,
                     f.h5.size() - 4096, f.h5.size() - 1})
    EXPECT_EQ(convert_damaged(f, f.h5.substr(0, cut), "cut at " + std::to_string(cut)), 1);
}

TEST(CorruptFile, BitFlipsAnywhereNeverCrashAndNeverChangeNumbers) {
  Fixture f = make_fixture("corrupt_flip");
  std::mt19937 rng(2026);
  // The superblock and root object header, then positions spread over the whole file. One
  // reader process takes all the damaged copies (a crash on any of them fails the test).
  std::vector<size_t> positions;
  for (size_t p = 0; p < 96; p += 3) positions.push_back(p);
  for (int i = 0; i < 300; ++i) positions.push_back(rng() % f.h5.size());
  std::string files;
  for (size_t k = 0; k < positions.size(); ++k) {
    std::string bytes = f.h5;
    bytes[positions[k]] = char(bytes[positions[k]] ^ (1 << (rng() % 8)));
    const std::string path = f.dir + "/flip_" + std::to_string(k) + ".h5";
    test::write_file(path, bytes);
    files += " " + path;
  }
  std::string out;
  const int status = test::run_command(std::string(OVR_READ_ALL) + " " + f.dir + "/ref.safetensors" + files, &out);
  ASSERT_EQ(status, 0) << "the reader died (status " << status << ")\n" << out.substr(0, 2000);
  std::istringstream lines(out);
  std::string line;
  size_t k = 0, errors = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("same", 0) == 0) {
      ++k;
    } else if (line.rfind("error ", 0) == 0) {
      EXPECT_NE(line.find("flip_" + std::to_string(k) + ".h5"), std::string::npos) << "the error must name the file: " << line;
      ++k, ++errors;
    } else if (line.rfind("DIFFERENT", 0) == 0) {
      ADD_FAILURE() << "bit flip at byte " << positions[k] << ": read without error but " << line;
      ++k;
    }
  }
  EXPECT_EQ(k, positions.size());
  std::printf("%zu of %zu single-bit flips were detected; the rest hit unused bytes\n", errors, positions.size());
  EXPECT_GT(errors, positions.size() / 2);
}

TEST(CorruptFile, MalformedSafetensorsIsAnErrorNotACrash) {
  Fixture f = make_fixture("corrupt_st");
  const std::string bad = f.dir + "/bad.safetensors";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"header length beyond the file", std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}"},
      {"not JSON", std::string("\x05\x00\x00\x00\x00\x00\x00\x00", 8) + "{abc}"},
      {"truncated data", f.reference.substr(0, f.reference.size() - 10)},
  };
  for (const auto& [what, bytes] : cases) {
    test::write_file(bad, bytes);
    std::string out;
    const int status = test::run_command(std::string(OVR_INSPECT) + " checkpoint " + bad, &out);
    EXPECT_EQ(status, 1) << what << "\n" << out;
    EXPECT_NE(out.find("ovr_inspect: error: " + bad), std::string::npos) << what << "\n" << out;
  }
}
