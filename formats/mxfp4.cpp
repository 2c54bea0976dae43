#include "formats/mxfp4.hpp"

#include <cmath>

namespace moeforge {

float fp4_e2m1_value(uint8_t nibble) {
  static constexpr float kValues[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  return kValues[nibble & 0xF];
}

void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t rows, int64_t cols, float* out) {
  const int64_t groups = cols / kMxfp4Block;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      int exponent = static_cast<int>(scales[r * groups + g]) - 127;
      const uint8_t* b = blocks + (r * groups + g) * kMxfp4BlockBytes;
      float* o = out + r * cols + g * kMxfp4Block;
      for (int64_t i = 0; i < kMxfp4BlockBytes; ++i) {
        o[2 * i] = std::ldexp(fp4_e2m1_value(b[i] & 0xF), exponent);
        o[2 * i + 1] = std::ldexp(fp4_e2m1_value(static_cast<uint8_t>(b[i] >> 4)), exponent);
      }
    }
}

}  // namespace moeforge
