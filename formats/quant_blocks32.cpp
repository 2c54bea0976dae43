// The 32-element block types: Q8_0 and Q4_0 (encode and decode), MXFP4 (decode). Arithmetic is
// float32 in the reference order; see ggml_quants.hpp for the layouts.
#include <cmath>
#include <cstring>

#include "formats/dtype.hpp"
#include "formats/ggml_quants.hpp"

namespace moeforge {
namespace {

constexpr int kBlock = 32;

void store_f16(std::byte* dst, float value) {
  uint16_t h = ggml_f16_from_f32(value);
  std::memcpy(dst, &h, 2);
}
float load_f16(const std::byte* src) {
  uint16_t h;
  std::memcpy(&h, src, 2);
  return f16_to_f32(h);
}

// 2^(e − 128) exactly, subnormal for e < 2 (the E8M0 scale halved, as ggml stores MXFP4 values doubled).
float e8m0_half(uint8_t e) {
  uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

constexpr int8_t kFp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace

void quantize_q8_0(const float* x, int64_t n, std::byte* dst) {
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (int j = 0; j < kBlock; ++j) dst[2 + j] = static_cast<std::byte>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

void quantize_q4_0(const float* x, int64_t n, std::byte* dst) {
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, dst += 18) {
    float amax = 0.0f, max = 0.0f;  // the element of largest magnitude, with its sign (first wins)
    for (int j = 0; j < kBlock; ++j)
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (int j = 0; j < kBlock / 2; ++j) {
      int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));  // truncation, as the reference
      int hi = std::min(15, static_cast<int>(x[j + kBlock / 2] * id + 8.5f));
      dst[2 + j] = static_cast<std::byte>(lo | (hi << 4));
    }
  }
}

void dequantize_q8_0(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 34, y += kBlock) {
    const float d = load_f16(src);
    for (int j = 0; j < kBlock; ++j) y[j] = static_cast<float>(static_cast<int8_t>(src[2 + j])) * d;
  }
}

void dequantize_q4_0(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 18, y += kBlock) {
    const float d = load_f16(src);
    for (int j = 0; j < kBlock / 2; ++j) {
      auto q = static_cast<uint8_t>(src[2 + j]);
      y[j] = static_cast<float>((q & 0x0F) - 8) * d;
      y[j + kBlock / 2] = static_cast<float>((q >> 4) - 8) * d;
    }
  }
}

void dequantize_mxfp4(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 17, y += kBlock) {
    const float d = e8m0_half(static_cast<uint8_t>(src[0]));
    for (int j = 0; j < kBlock / 2; ++j) {
      auto q = static_cast<uint8_t>(src[1 + j]);
      y[j] = static_cast<float>(kFp4Values[q & 0x0F]) * d;
      y[j + kBlock / 2] = static_cast<float>(kFp4Values[q >> 4]) * d;
    }
  }
}

}  // namespace moeforge
