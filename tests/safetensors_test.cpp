#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/fs.h"
#include "safetensors_test_util.h"

namespace ovr::io {
namespace {

using namespace ovr::io::test;
using nlohmann::json;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "ovr_safetensors_" + std::to_string(::getpid()) + "_" +
           info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// The message of the ovr::Error that f throws; a test failure if it throws nothing (or anything
// else, which gtest reports as an uncaught exception).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an ovr::Error";
  return "";
}

#define EXPECT_ERROR_CONTAINS(stmt, phrase)                                      \
  do {                                                                           \
    std::string msg_ = error_of([&] { stmt; });                                  \
    EXPECT_NE(msg_.find(phrase), std::string::npos)                              \
        << "message: \"" << msg_ << "\"\nexpected to contain: \"" << (phrase) << "\""; \
  } while (0)

SafetensorsHeader parse(const Bytes& b) {
  return parse_safetensors_header(b.data(), b.size(), b.size(), kOrigin);
}

SafetensorsHeader parse(const std::string& header, uint64_t data_size) {
  return parse(make_file(header, data_size));
}

Bytes read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& p, const Bytes& b, size_t n) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(n));
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + 31 * i);
  return b;
}

std::vector<TensorInfo> sample_tensors() {
  return {
      {"model.embed.weight", DType::F32, {2, 3}},
      {"layers.0.bf16", DType::BF16, {4}},
      {"layers.0.f16", DType::F16, {3, 1}},
      {"step", DType::I64, {2}},
      {"mask", DType::BOOL, {5}},
      {"scale", DType::F64, {}},  // scalar
      {"empty", DType::F32, {0, 4}},
  };
}

// ---- round trip ---------------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripPreservesNamesDtypesShapesBytes) {
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "héllo"}};
  const std::string p = path("model.safetensors");
  std::map<std::string, Bytes> data;
  {
    SafetensorsWriter w(p, tensors, metadata);
    // Write in reverse order, and the first tensor in two pieces: offsets are fixed up front.
    for (auto it = tensors.rbegin(); it != tensors.rend(); ++it) {
      Bytes b = pattern(it->nbytes(), uint8_t(data.size() + 1));
      if (it->name == "model.embed.weight") {
        w.write(it->name, b.data() + 10, 10, b.size() - 10);
        w.write(it->name, b.data(), 0, 10);
      } else {
        w.write(it->name, b.data());
      }
      data[it->name] = b;
    }
    w.close();
  }
  EXPECT_EQ(file_size(p), SafetensorsWriter::file_size(tensors, metadata));

  SafetensorsFile f(p);
  EXPECT_EQ(f.path(), p);
  EXPECT_EQ(f.header().metadata, metadata);
  ASSERT_EQ(f.header().entries.size(), tensors.size());
  for (const TensorInfo& t : tensors) {
    SCOPED_TRACE(t.name);
    const SafetensorsEntry* e = f.find(t.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->info.name, t.name);
    EXPECT_EQ(e->info.dtype, t.dtype);
    EXPECT_EQ(e->info.shape, t.shape);
    EXPECT_EQ(e->end - e->begin, t.nbytes());
    Bytes got(t.nbytes());
    f.read(t.name, got.data());
    EXPECT_EQ(got, data[t.name]);
  }
  EXPECT_EQ(f.find("scale")->info.numel(), 1);
  EXPECT_EQ(f.find("empty")->end, f.find("empty")->begin);
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST_F(SafetensorsTest, ReadsSliceOfTensor) {
  const std::vector<TensorInfo> tensors = {{"a", DType::U8, {3}}, {"b", DType::I32, {8}}};
  const std::string p = path("slice.safetensors");
  const Bytes a = pattern(3, 7), b = pattern(32, 9);
  {
    SafetensorsWriter w(p, tensors, {});
    w.write("a", a.data());
    w.write("b", b.data());
    w.close();
  }
  SafetensorsFile f(p);
  Bytes got(12);
  f.read("b", got.data(), 8, 12);
  EXPECT_EQ(got, Bytes(b.begin() + 8, b.begin() + 20));
  f.read("b", got.data(), 32, 0);  // empty read at the end is fine
}

TEST_F(SafetensorsTest, HeaderIsPaddedToEightBytesWithSpaces) {
  for (size_t len = 0; len < 12; ++len) {
    SCOPED_TRACE(len);
    const std::map<std::string, std::string> metadata = {{"k", std::string(len, 'v')}};
    const std::vector<TensorInfo> tensors = {{"t", DType::F16, {3}}};
    const std::string p = path("pad.safetensors");
    { SafetensorsWriter(p, tensors, metadata).close(); }
    const Bytes b = read_bytes(p);
    SafetensorsFile f(p);
    const uint64_t n = f.header().header_size;
    EXPECT_EQ(f.header().data_start() % 8, 0u);
    EXPECT_EQ(b.size(), f.header().data_start() + 6);
    ASSERT_GT(n, 0u);
    EXPECT_TRUE(b[8 + n - 1] == '}' || b[8 + n - 1] == ' ');
    std::string text(b.begin() + 8, b.begin() + 8 + long(n));
    EXPECT_EQ(text.find_last_not_of(' '), text.rfind('}'));
  }
}

TEST_F(SafetensorsTest, HeaderListsTensorsInGivenOrderWithMetadataFirst) {
  const std::vector<TensorInfo> tensors = {{"zeta", DType::F32, {1}}, {"alpha", DType::F32, {2}}};
  const std::string p = path("order.safetensors");
  { SafetensorsWriter(p, tensors, {{"format", "pt"}}).close(); }
  const Bytes b = read_bytes(p);
  const std::string text(b.begin() + 8, b.end());
  EXPECT_LT(text.find("__metadata__"), text.find("zeta"));
  EXPECT_LT(text.find("zeta"), text.find("alpha"));
  SafetensorsFile f(p);
  ASSERT_EQ(f.header().entries.size(), 2u);
  EXPECT_EQ(f.header().entries[0].info.name, "zeta");  // entries come in data order
  EXPECT_EQ(f.header().entries[0].begin, 0u);
  EXPECT_EQ(f.header().entries[1].begin, 4u);
}

TEST_F(SafetensorsTest, WriterOmitsEmptyMetadataAndHandlesNoTensors) {
  const std::string p = path("empty.safetensors");
  { SafetensorsWriter(p, {}, {}).close(); }
  const Bytes b = read_bytes(p);
  EXPECT_EQ(std::string(b.begin() + 8, b.end()).find("__metadata__"), std::string::npos);
  EXPECT_EQ(b.size(), SafetensorsWriter::file_size({}, {}));
  SafetensorsFile f(p);
  EXPECT_TRUE(f.header().entries.empty());
  EXPECT_TRUE(f.header().metadata.empty());
}

TEST_F(SafetensorsTest, ReadRejectsUnknownTensorAndOutOfBoundsSlice) {
  const std::string p = path("r.safetensors");
  { SafetensorsWriter(p, {{"a", DType::F32, {4}}}, {}).close(); }
  SafetensorsFile f(p);
  Bytes buf(32);
  EXPECT_ERROR_CONTAINS(f.read("nope", buf.data()), p + ": no tensor named 'nope'");
  EXPECT_ERROR_CONTAINS(f.read("a", buf.data(), 8, 9), "tensor 'a': read of 9 bytes at offset 8");
  EXPECT_ERROR_CONTAINS(f.read("a", buf.data(), 17, 0), "out of bounds");
  EXPECT_ERROR_CONTAINS(f.read("a", buf.data(), 8, UINT64_MAX), "out of bounds");
  EXPECT_ERROR_CONTAINS(f.read("a", buf.data(), UINT64_MAX, 2), "out of bounds");
}

TEST_F(SafetensorsTest, WriterRejectsBadTensorListsAndOutOfBoundsWrites) {
  const std::string p = path("w.safetensors");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"a", DType::F32, {1}}, {"a", DType::F32, {2}}}, {}),
                        "tensor 'a': duplicate tensor name");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"", DType::F32, {1}}}, {}), "empty name");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"__metadata__", DType::F32, {1}}}, {}), "reserved");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"n", DType::F32, {2, -1}}}, {}),
                        "negative dimension");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"n", DType::F32, {INT64_MAX, 2}}}, {}), "overflow");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter::file_size({{"bad\xff", DType::F32, {1}}}, {}),
                        "cannot encode");

  SafetensorsWriter w(p, {{"a", DType::F32, {2}}}, {});
  Bytes buf(16);
  EXPECT_ERROR_CONTAINS(w.write("b", buf.data()), "no tensor named 'b'");
  EXPECT_ERROR_CONTAINS(w.write("a", buf.data(), 4, 5), "tensor 'a': write of 5 bytes at offset 4");
  w.close();
  w.close();  // closing twice is harmless
  EXPECT_ERROR_CONTAINS(w.write("a", buf.data()), "write after close");
}

TEST_F(SafetensorsTest, SecondWriterOpensExistingFileWithoutTruncating) {
  const std::vector<TensorInfo> tensors = {{"a", DType::I16, {3}}, {"b", DType::I8, {5}}};
  const std::string p = path("shared.safetensors");
  const Bytes a = pattern(6, 1), b = pattern(5, 2);
  SafetensorsWriter first(p, tensors, {});
  first.write("a", a.data());
  {
    SafetensorsWriter second(p, tensors, {}, /*create=*/false);
    second.write("b", b.data());
    second.close();
  }
  first.close();
  SafetensorsFile f(p);
  Bytes got_a(6), got_b(5);
  f.read("a", got_a.data());
  f.read("b", got_b.data());
  EXPECT_EQ(got_a, a);
  EXPECT_EQ(got_b, b);

  EXPECT_ERROR_CONTAINS(SafetensorsWriter(p, {{"a", DType::I16, {4}}}, {}, false), "expected");
  EXPECT_ERROR_CONTAINS(SafetensorsWriter(path("absent.safetensors"), tensors, {}, false),
                        "absent.safetensors");
}

// ---- malformed headers: each names its problem --------------------------------------------

TEST(SafetensorsHeader, AcceptsEmptyHeaderTrailingSpacesAndZeroSizeTensors) {
  EXPECT_TRUE(parse("{}", 0).entries.empty());
  EXPECT_TRUE(parse("  {}   ", 0).entries.empty());
  SafetensorsHeader h = parse(
      R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
      R"("z0":{"dtype":"BF16","shape":[3,0],"data_offsets":[0,0]}})",
      4);
  ASSERT_EQ(h.entries.size(), 3u);
  EXPECT_EQ(h.entries[0].info.name, "z0");
  EXPECT_EQ(h.entries[1].info.name, "a");
  EXPECT_EQ(h.entries[2].info.name, "z");
}

TEST(SafetensorsHeader, RejectsFileTooSmallForLengthPrefix) {
  const Bytes b(5, 0);
  EXPECT_ERROR_CONTAINS(parse(b), "x.safetensors: file of 5 bytes is too small");
}

TEST(SafetensorsHeader, RejectsHeaderLengthAboveLimit) {
  Bytes b(64, ' ');
  put_le64(kSafetensorsMaxHeader + 1, b.data());
  EXPECT_ERROR_CONTAINS(parse_safetensors_header(b.data(), b.size(), UINT64_MAX, kOrigin),
                        "header length 100000001 exceeds the limit");
  put_le64(UINT64_MAX, b.data());
  EXPECT_ERROR_CONTAINS(parse(b), "exceeds the limit");
}

TEST(SafetensorsHeader, RejectsHeaderLengthBeyondFile) {
  Bytes b = make_file("{}", 0);
  put_le64(3, b.data());
  EXPECT_ERROR_CONTAINS(parse(b), "header length 3 extends beyond the end of the file (10 bytes");
}

TEST(SafetensorsHeader, RejectsBufferShorterThanHeader) {
  const Bytes b = make_file("{}      ", 0);
  EXPECT_ERROR_CONTAINS(parse_safetensors_header(b.data(), 12, b.size(), kOrigin),
                        "only 12 bytes given, need 16");
  EXPECT_ERROR_CONTAINS(parse_safetensors_header(b.data(), 3, b.size(), kOrigin),
                        "only 3 bytes given");
}

TEST(SafetensorsHeader, RejectsInvalidJson) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a": )", 0), "x.safetensors: header is not valid JSON");
  EXPECT_ERROR_CONTAINS(parse("", 0), "header is not valid JSON");
  // nlohmann's lexer would stop at a NUL and ignore what follows; the reference rejects it.
  EXPECT_ERROR_CONTAINS(parse(std::string("{}\0   ", 6), 0),
                        "header is not valid JSON: NUL byte at offset 2");
  EXPECT_ERROR_CONTAINS(parse(std::string("{}\0{\"a\":1}", 10), 0), "NUL byte");
  EXPECT_ERROR_CONTAINS(parse("{\"\xc3\x28\": 1}", 0), "header is not valid JSON");  // bad UTF-8
}

TEST(SafetensorsHeader, RejectsDeeplyNestedJson) {
  const std::string deep =
      R"({"__metadata__":)" + std::string(1000, '[') + std::string(1000, ']') + "}";
  EXPECT_ERROR_CONTAINS(parse(deep, 0), "nested deeper than");
}

TEST(SafetensorsHeader, RejectsNonObjectHeaderAndEntries) {
  EXPECT_ERROR_CONTAINS(parse("[1, 2]", 0), "header is not a JSON object (array)");
  EXPECT_ERROR_CONTAINS(parse(R"({"a": 3})", 0), "tensor 'a': entry is not a JSON object");
  EXPECT_ERROR_CONTAINS(parse(R"({"": {}})", 0), "tensor with an empty name");
}

TEST(SafetensorsHeader, RejectsMissingOrUnexpectedFields) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4),
                        "tensor 'a': missing field 'shape'");
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4),
      "tensor 'a': unexpected field 'extra'");
}

TEST(SafetensorsHeader, RejectsUnknownDtype) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1),
                        "x.safetensors: tensor 'a': unknown dtype 'F8'");
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,1]}})", 1),
                        "dtype is not a string");
}

TEST(SafetensorsHeader, RejectsNegativeOrNonIntegerDimension) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"U8","shape":[2,-1],"data_offsets":[0,0]}})", 0),
                        "tensor 'a': negative dimension -1");
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", 2),
                        "shape entry is not an integer");
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}})", 2),
                        "shape entry is not an integer (string)");
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"U8","shape":2,"data_offsets":[0,2]}})", 2),
                        "shape is not an array");
}

TEST(SafetensorsHeader, RejectsHugeDimsThatOverflow) {
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0),
      "does not fit in int64");
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", 0),
      "overflows the element count");
  // 2^61 elements fit int64, but 2^61 x 8 bytes wraps uint64 to 0, which would match [0, 0].
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0),
      "overflows the byte count");
  // A zero dimension makes any other dimension harmless.
  EXPECT_EQ(
      parse(R"({"a":{"dtype":"I64","shape":[0,9223372036854775807],"data_offsets":[0,0]}})", 0)
          .entries.size(),
      1u);
}

TEST(SafetensorsHeader, RejectsShapeOffsetMismatch) {
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,10]}})", 10),
      "x.safetensors: tensor 'a.weight': data_offsets [0, 10] do not match dtype F32 x shape "
      "[2, 2] = 16 bytes");
}

TEST(SafetensorsHeader, RejectsMalformedDataOffsets) {
  const char* bad[] = {
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":{"0":1}}})",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,"1"]}})",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}})",
  };
  for (const char* h : bad) {
    SCOPED_TRACE(h);
    EXPECT_ERROR_CONTAINS(parse(h, 1), "tensor 'a': data_offsets");
  }
}

TEST(SafetensorsHeader, RejectsBeginAfterEnd) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4),
                        "tensor 'a': data_offsets [4, 0] have begin > end");
}

TEST(SafetensorsHeader, RejectsOverlappingOffsets) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              12),
                        "tensor 'b': data_offsets [4, 12] overlap tensor 'a'");
  // A zero-size tensor inside another one is an overlap too.
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                              8),
                        "overlap");
  // Two names for the same bytes.
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                              8),
                        "overlap");
}

TEST(SafetensorsHeader, RejectsHoleBetweenTensors) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                              20),
                        "tensor 'b': data_offsets [12, 20] leave a hole of 4 bytes");
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                        "leave a hole of 4 bytes");
}

TEST(SafetensorsHeader, RejectsTrailingBytes) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 11),
                        "x.safetensors: data section has 3 trailing bytes");
  EXPECT_ERROR_CONTAINS(parse("{}", 1), "1 trailing bytes");
}

TEST(SafetensorsHeader, RejectsOffsetsBeyondEnd) {
  EXPECT_ERROR_CONTAINS(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 7),
                        "tensor 'a': data_offsets [0, 8] extend beyond the end of the data "
                        "section (7 bytes)");
  EXPECT_ERROR_CONTAINS(
      parse(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,)"
            R"(18446744073709551615]}})",
            0),
      "extend beyond the end");
}

TEST(SafetensorsHeader, RejectsNonStringOrNonObjectMetadata) {
  EXPECT_ERROR_CONTAINS(parse(R"({"__metadata__":{"format":"pt","n":3}})", 0),
                        "x.safetensors: __metadata__ value for key 'n' is not a string (number)");
  EXPECT_ERROR_CONTAINS(parse(R"({"__metadata__":["pt"]})", 0),
                        "__metadata__ is not a JSON object");
  EXPECT_EQ(parse(R"({"__metadata__":{"format":"pt"}})", 0).metadata.at("format"), "pt");
}

TEST(SafetensorsHeader, ErrorMessagesTruncateHugeNames) {
  const std::string name(100000, 'n');
  std::string msg = error_of([&] { parse("{\"" + name + "\": 1}", 0); });
  EXPECT_LT(msg.size(), 1000u);
  EXPECT_NE(msg.find("nnn...'"), std::string::npos) << msg;
}

// ---- truncated files ----------------------------------------------------------------------

TEST_F(SafetensorsTest, RejectsTruncatedFile) {
  const std::string p = path("full.safetensors");
  {
    SafetensorsWriter w(p, sample_tensors(), {{"format", "pt"}});
    for (const auto& t : sample_tensors()) w.write(t.name, pattern(t.nbytes(), 3).data());
    w.close();
  }
  const Bytes full = read_bytes(p);
  const uint64_t data_start = SafetensorsFile(p).header().data_start();
  const size_t cuts[] = {0, 1, 7, 8, 9, 40, size_t(data_start) - 1, size_t(data_start),
                         size_t(data_start) + 1, full.size() - 1};
  const std::string cut_path = path("cut.safetensors");
  for (size_t cut : cuts) {
    SCOPED_TRACE(cut);
    write_bytes(cut_path, full, cut);
    std::string msg = error_of([&] { SafetensorsFile f(cut_path); });
    EXPECT_EQ(msg.rfind(cut_path + ": ", 0), 0u) << msg;
  }
}

TEST_F(SafetensorsTest, RejectsMissingFile) {
  EXPECT_ERROR_CONTAINS(SafetensorsFile f(path("none.safetensors")), "none.safetensors: ");
}

// ---- index --------------------------------------------------------------------------------

TEST_F(SafetensorsTest, IndexRoundTripPreservesTotalSizeAndWeightMap) {
  SafetensorsIndex index;
  index.total_size = 123456789012ull;
  index.weight_map = {{"a.weight", "model-00001-of-00002.safetensors"},
                      {"b.weight", "model-00002-of-00002.safetensors"}};
  const std::string p = path("model.safetensors.index.json");
  write_safetensors_index(p, index);
  const SafetensorsIndex got = read_safetensors_index(p);
  EXPECT_EQ(got.total_size, index.total_size);
  EXPECT_EQ(got.weight_map, index.weight_map);
  const std::string text = read_text_file(p);
  EXPECT_NE(text.find("\n  \"metadata\": {\n    \"total_size\": 123456789012"), std::string::npos)
      << text;
}

TEST_F(SafetensorsTest, IndexAcceptsExtraMetadataAndFloatTotalSize) {
  const std::string p = path("idx.json");
  std::ofstream(p) << R"({"metadata":{"total_size":1024.0,"format":"pt"},)"
                      R"("weight_map":{"a":"m.safetensors"}})";
  EXPECT_EQ(read_safetensors_index(p).total_size, 1024u);
}

TEST_F(SafetensorsTest, IndexRejectsMalformedContent) {
  const std::string p = path("bad.index.json");
  const std::pair<const char*, const char*> cases[] = {
      {R"({"weight_map": )", "not valid JSON"},
      {R"([])", "index is not a JSON object"},
      {R"({"metadata":{"total_size":1}})", "missing weight_map"},
      {R"({"weight_map":[]})", "weight_map is not a JSON object"},
      {R"({"metadata":3,"weight_map":{}})", "metadata is not a JSON object"},
      {R"({"metadata":{"total_size":-5},"weight_map":{}})", "metadata.total_size is not a"},
      {R"({"metadata":{"total_size":"5"},"weight_map":{}})", "metadata.total_size is not a"},
      {R"({"weight_map":{"a":3}})", "weight_map entry for tensor 'a' is not a string"},
      {R"({"weight_map":{"a":"../x.safetensors"}})",
       "weight_map entry for tensor 'a': file name '../x.safetensors' is not a plain"},
      {R"({"weight_map":{"a":".."}})", "weight_map entry for tensor 'a': file name '..' is not"},
      {R"({"weight_map":{"a":""}})", "weight_map entry for tensor 'a': file name '' is not"},
      {R"({"weight_map":{"":"m.safetensors"}})", "weight_map has an empty tensor name"},
  };
  for (const auto& [content, phrase] : cases) {
    SCOPED_TRACE(content);
    std::ofstream(p, std::ios::trunc) << content;
    EXPECT_ERROR_CONTAINS(read_safetensors_index(p), p + ": " + phrase);
  }
  EXPECT_ERROR_CONTAINS(read_safetensors_index(path("absent.json")), "absent.json");
  SafetensorsIndex bad;
  bad.weight_map = {{"a", "sub/m.safetensors"}};
  EXPECT_ERROR_CONTAINS(write_safetensors_index(p, bad), "'sub/m.safetensors' is not a plain");
}

}  // namespace
}  // namespace ovr::io
