// The safetensors header parser under fuzzing: random and structured inputs are either parsed
// into a consistent layout or rejected with ovr::Error, never a crash or another exception.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/safetensors.h"
#include "safetensors_test_util.h"

namespace ovr::io {
namespace {

using namespace ovr::io::test;
using nlohmann::json;

// ---- fuzzing ------------------------------------------------------------------------------

// What a successful parse promises: entries in bounds, sized by dtype x shape, tiling the data.
void expect_consistent(const SafetensorsHeader& h, uint64_t file_size) {
  ASSERT_LE(h.data_start(), file_size);
  const uint64_t data_size = file_size - h.data_start();
  uint64_t expected = 0;
  for (const SafetensorsEntry& e : h.entries) {
    ASSERT_FALSE(e.info.name.empty());
    ASSERT_LE(e.begin, e.end);
    ASSERT_LE(e.end, data_size);
    ASSERT_EQ(e.begin, expected);
    uint64_t numel = 1;
    for (int64_t d : e.info.shape) {
      ASSERT_GE(d, 0);
      ASSERT_FALSE(__builtin_mul_overflow(numel, uint64_t(d), &numel));
    }
    uint64_t nbytes = 0;
    ASSERT_FALSE(__builtin_mul_overflow(numel, dtype_size(e.info.dtype), &nbytes));
    ASSERT_EQ(e.end - e.begin, nbytes);
    expected = e.end;
  }
  ASSERT_EQ(expected, data_size);
}

// Runs the parser on the first `given` bytes of a file image of `file_size` bytes; only success
// (with a consistent layout) or ovr::Error are acceptable. The bytes are copied into a buffer of
// exactly that size so ASan catches any read past it. Returns whether it parsed.
bool parse_or_reject(const Bytes& image, size_t given, uint64_t file_size) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[given]);
  if (given) std::memcpy(exact.get(), image.data(), given);
  try {
    expect_consistent(parse_safetensors_header(exact.get(), given, file_size, kOrigin), file_size);
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return false;
  }
}

Bytes valid_sample_file() {
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  h["w"] = {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}};
  h["b"] = {{"dtype", "BF16"}, {"shape", {3}}, {"data_offsets", {24, 30}}};
  h["s"] = {{"dtype", "I64"}, {"shape", json::array()}, {"data_offsets", {30, 38}}};
  h["z"] = {{"dtype", "BOOL"}, {"shape", {0, 7}}, {"data_offsets", {38, 38}}};
  h["m"] = {{"dtype", "U8"}, {"shape", {2}}, {"data_offsets", {38, 40}}};
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return make_file(text, 40);
}

TEST(SafetensorsFuzz, HeaderFuzzNeverCrashes) {
  const Bytes base = valid_sample_file();
  ASSERT_TRUE(parse_or_reject(base, base.size(), base.size()));
  const uint64_t base_n = base.size() - 8 - 40;
  const char interesting[] = "{}[]\":,0123456789-e.\\ FUI";
  std::mt19937_64 rng(20240611);
  auto pick = [&rng](size_t n) { return size_t(rng() % n); };
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes b = base;
    uint64_t n = base_n;
    const int ops = 1 + int(pick(4));
    for (int op = 0; op < ops; ++op) {
      const size_t pos = 8 + pick(size_t(n) + 1);  // somewhere in (or just after) the header
      switch (pick(7)) {
        case 0:  // flip one bit
          if (pos < b.size()) b[pos] ^= uint8_t(1u << pick(8));
          break;
        case 1:  // replace with a structural character
          if (pos < b.size()) b[pos] = uint8_t(interesting[pick(sizeof(interesting) - 1)]);
          break;
        case 2:  // insert bytes, keeping N consistent with the new header length
          b.insert(b.begin() + long(std::min(pos, b.size())), 1 + pick(3),
                   uint8_t(interesting[pick(sizeof(interesting) - 1)]));
          n = std::min<uint64_t>(n + 1, b.size() - 8);
          break;
        case 3:  // delete bytes
          if (pos < b.size())
            b.erase(b.begin() + long(pos),
                    b.begin() + long(std::min(b.size(), pos + 1 + pick(4))));
          n = std::min<uint64_t>(n, b.size() - 8);
          break;
        case 4:  // truncate the file
          b.resize(pick(b.size() + 1));
          break;
        case 5:  // random N: near the real one, small, or anything
          switch (pick(3)) {
            case 0: n = base_n + pick(17) - 8; break;
            case 1: n = pick(64); break;
            default: n = rng(); break;
          }
          break;
        default:  // random byte
          if (pos < b.size()) b[pos] = uint8_t(rng());
          break;
      }
      if (b.size() >= 8) put_le64(n, b.data());
    }
    // Callers hand over min(file size, 8 + N) bytes; sometimes hand over fewer than promised.
    size_t nbytes = b.size();
    if (b.size() >= 8 && n <= b.size() - 8) nbytes = size_t(8 + n);
    if (pick(16) == 0) nbytes = pick(nbytes + 1);
    accepted += parse_or_reject(b, nbytes, b.size()) ? 1 : 0;
    if (::testing::Test::HasFailure()) FAIL() << "at iteration " << iter;
  }
  ::testing::Test::RecordProperty("accepted", accepted);
  EXPECT_GT(accepted, 0);  // the mutations do not only produce garbage
}

// Byte mutations mostly break the JSON; this one keeps the JSON valid and attacks the semantic
// checks instead: dtypes, dims, offsets and fields set to boundary and random values.
TEST(SafetensorsFuzz, StructuredHeaderFuzzAcceptsOnlyConsistentLayouts) {
  const Bytes base_file = valid_sample_file();
  const json base = json::parse(std::string(base_file.begin() + 8, base_file.end() - 40));
  const std::vector<std::string> names = {"w", "b", "s", "z", "m"};
  const std::vector<json> values = {0, 1, 2, 3, 6, 8, 24, 30, 38, 40, 41, -1, 2.0, "3",
                                    json::array(), json::object(), nullptr, true,
                                    int64_t(1) << 31, int64_t(1) << 61, int64_t(1) << 62,
                                    INT64_MAX, UINT64_MAX, UINT64_MAX - 1};
  const std::vector<std::string> dtypes = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16",
                                           "I8",  "U8",  "BOOL", "F8", "f32", ""};
  std::mt19937_64 rng(7);
  auto pick = [&rng](size_t n) { return size_t(rng() % n); };
  auto value = [&] { return pick(4) == 0 ? json(rng() % 64) : values[pick(values.size())]; };
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    json h = base;
    const int ops = 1 + int(pick(3));
    for (int op = 0; op < ops; ++op) {
      json& t = h[names[pick(names.size())]];
      const size_t kind = pick(8);
      if (!t.is_object() && kind < 6) continue;  // an earlier op replaced the whole entry
      switch (kind) {
        case 0: t["dtype"] = dtypes[pick(dtypes.size())]; break;
        case 1:
          if (!t["shape"].empty()) t["shape"][pick(t["shape"].size())] = value();
          break;
        case 2: t["shape"].push_back(value()); break;
        case 3: t["data_offsets"][pick(2)] = value(); break;
        case 4: t.erase(std::vector<std::string>{"dtype", "shape", "data_offsets"}[pick(3)]); break;
        case 5: t[pick(2) ? "extra" : "dtype"] = value(); break;
        case 6: h["__metadata__"][pick(2) ? "format" : "other"] = value(); break;
        default: t = value(); break;
      }
    }
    std::string text = h.dump();
    text.append(pick(9), ' ');
    const Bytes b = make_file(text, 36 + pick(8));
    (parse_or_reject(b, b.size(), b.size()) ? accepted : rejected)++;
    if (::testing::Test::HasFailure()) FAIL() << "at iteration " << iter << ": " << text;
  }
  ::testing::Test::RecordProperty("accepted", accepted);
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace ovr::io
