#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <vector>

#include "io/checksum.h"

using namespace ovr::io;

TEST(Checksum, EqualsZlibCrc32AndCombinesAcrossSplits) {
  std::vector<unsigned char> data(100'003);
  std::mt19937 rng(7);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  const uint32_t whole = uint32_t(::crc32(0, data.data(), uInt(data.size())));
  EXPECT_EQ(crc32_update(0, data.data(), data.size()), whole);  // same CRC whichever backend is built
  for (size_t split : {size_t(0), size_t(1), size_t(4096), size_t(50'001), data.size()}) {
    const uint32_t a = crc32_update(0, data.data(), split);
    const uint32_t b = crc32_update(0, data.data() + split, data.size() - split);
    EXPECT_EQ(crc32_update(a, data.data() + split, data.size() - split), whole) << "streaming, split " << split;
    EXPECT_EQ(crc32_concat(a, b, data.size() - split), whole) << "combined, split " << split;
  }
  EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);  // the standard check value
}
