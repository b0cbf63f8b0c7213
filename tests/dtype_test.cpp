#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "io/dtype.h"

using namespace ovr::io;

TEST(DType, NamesRoundTripAndUnknownIsAnError) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::BOOL})
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_THROW(dtype_from_name("F8_E4M3"), ovr::Error);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ((TensorInfo{"x", DType::F32, {}}).numel(), 1);
  EXPECT_EQ((TensorInfo{"x", DType::F32, {3, 0}}).nbytes(), 0u);
}

TEST(DType, EveryHalfValueSurvivesF16ToF32AndBack) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
}

TEST(DType, EveryBf16ValueSurvivesBf16ToF32AndBack) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_f32(uint16_t(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), b);
  }
}

TEST(DType, Fp32ToHalfTypesRoundsToNearestEven) {
  // 1 + 2^-8 is exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one (1).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), f32_to_bf16(1.0f));
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), f32_to_bf16(1.0f + std::ldexp(1.0f, -6)));
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), f32_to_f16(1.0f));
  EXPECT_EQ(f16_to_f32(f32_to_f16(65520.0f)), INFINITY);   // rounds past the largest half
  EXPECT_EQ(f16_to_f32(f32_to_f16(65519.0f)), 65504.0f);
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(f32_to_f16(std::ldexp(1.0f, -26))), 0.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}
