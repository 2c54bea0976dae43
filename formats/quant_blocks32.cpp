// The 32-element block types: Q8_0 and Q4_0 (encode and decode), MXFP4 (decode). Arithmetic is
// float32 in the reference order; see ggml_quants.hpp for the layouts.
#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

#if defined(__AVX2__)
// One Q8_0 block, eight lanes at a time; the same float32 operations as the scalar loop below, and
// roundf's half-away-from-zero done exactly: truncate, then step away from zero when |x − t| ≥ ½.
// Returns false (nothing written) for a block holding a NaN or Inf, which the scalar loop handles.
bool quantize_q8_0_block_avx2(const float* x, std::byte* dst) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(INFINITY);
  __m256 v[4], amax8 = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    __m256 a = _mm256_and_ps(v[k], abs_mask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));  // NaN or Inf
    amax8 = _mm256_max_ps(amax8, a);
  }
  if (_mm256_movemask_ps(bad) != 0) return false;
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax8), _mm256_extractf128_ps(amax8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float amax = _mm_cvtss_f32(m4);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(dst, d);
  const __m256 idv = _mm256_set1_ps(id), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    __m256 y = _mm256_mul_ps(v[k], idv);
    __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 away = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(y, t), abs_mask), half, _CMP_GE_OQ);
    __m256 step = _mm256_or_ps(_mm256_and_ps(y, sign_mask), one);  // ±1 with y's sign
    q[k] = _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(away, step)));
  }
  // Pack 32 int32 → 32 int8 (values lie in [−127, 127]); packs work per 128-bit lane, so reorder.
  __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2), w);
  return true;
}
#endif

}  // namespace

void quantize_q8_0(const float* x, int64_t n, std::byte* dst) {
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, dst += 34) {
#if defined(__AVX2__)
    if (quantize_q8_0_block_avx2(x, dst)) continue;
#endif
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (int j = 0; j < kBlock; ++j) {
      float r = std::round(x[j] * id);  // NaN (from an Inf or NaN input) stores 0 rather than an undefined cast
      dst[2 + j] = static_cast<std::byte>(static_cast<int8_t>(std::isnan(r) ? 0.0f : std::clamp(r, -128.0f, 127.0f)));
    }
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
