// The 256-element super-block types Q4_K, Q5_K, Q6_K (encode and decode). The encoders search
// per sub-block scales (and mins) that minimise a weighted squared error, then store 6-bit
// (Q4_K/Q5_K) or 8-bit (Q6_K) scales relative to one f16 super-block scale; every product, sum
// and rounding follows the reference order so the bytes equal llama.cpp's.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/dtype.hpp"
#include "formats/ggml_quants.hpp"

namespace moeforge {
namespace {

constexpr int kSuper = 256;
constexpr float kGroupMaxEps = 1e-15f;

// Round half to even through the float mantissa (valid for |x| <= 4194303).
int nearest_int(float x) {
  float v = x + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

void store_f16(std::byte* dst, float value) {
  uint16_t h = ggml_f16_from_f32(value);
  std::memcpy(dst, &h, 2);
}
float load_f16(const std::byte* src) {
  uint16_t h;
  std::memcpy(&h, src, 2);
  return f16_to_f32(h);
}

struct ScaleMin {
  float scale;
  float min;  // stored negated: the offset subtracted on decode (>= 0)
};

// Levels L in [0, nmax] with x ≈ scale·L + min (min <= 0), by a weighted least-squares search
// over nstep + 1 candidate inverse scales around nmax / (max − min).
ScaleMin fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    return {0.0f, -min};
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      aux[i] = static_cast<uint8_t>(l);
      float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      float diff = this_scale * static_cast<float>(aux[i]) + this_min - x[i];
      error += w[i] * (diff * diff);
    }
    if (error < best_error) {
      std::copy(aux, aux + n, L);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  return {scale, -min};
}

// The 6-bit scale and min of sub-block j in the 12 packed bytes.
void unpack_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K and Q5_K share everything but the level count and the search range. Writes d, dmin and
// the packed scales at head (16 bytes) and the final levels to L.
void encode_k_scales(const float* x, int nmax, float rmin, int nstep, std::byte* head, uint8_t* L) {
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(xs[l]);
    ScaleMin sm = fit_scale_min(32, nmax, xs, w, L + 32 * j, rmin, 0.1f, nstep);
    scales[j] = sm.scale;
    mins[j] = sm.min;
    if (sm.scale > max_scale) max_scale = sm.scale;
    if (sm.min > max_min) max_min = sm.min;
  }
  float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t packed[12] = {};
  for (int j = 0; j < 8; ++j) {
    auto ls = static_cast<uint8_t>(std::min<int>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j]))));
    auto lm = static_cast<uint8_t>(std::min<int>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j]))));
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  store_f16(head, max_scale / 63.f);
  store_f16(head + 2, max_min / 63.f);
  std::memcpy(head + 4, packed, 12);
  // Final levels from the rounded (stored) scales.
  const float d_all = load_f16(head), dmin_all = load_f16(head + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min(j, packed, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int i = 0; i < 32; ++i) L[32 * j + i] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
  }
}

// Signed levels in [−nmax, nmax) with x ≈ scale·l, weights x², searching 19 inverse scales
// around −nmax / max. L holds l + nmax.
float fit_scale_signed(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  auto sums = [&](float iscale, float* sumlx, float* suml2) {
    *sumlx = *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      float l = static_cast<float>(std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      float w = x[i] * x[i];
      *sumlx += w * x[i] * l;
      *suml2 += w * l * l;
    }
  };
  auto set_levels = [&](float iscale) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  sums(iscale, &sumlx, &suml2);
  set_levels(iscale);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sums(iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      set_levels(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

}  // namespace

void quantize_q4_k(const float* x, int64_t n, std::byte* dst) {
  uint8_t L[kSuper];
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper, dst += 144) {
    encode_k_scales(x, 15, -1.0f, 20, dst, L);
    std::byte* q = dst + 16;
    for (int j = 0; j < kSuper; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<std::byte>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quantize_q5_k(const float* x, int64_t n, std::byte* dst) {
  uint8_t L[kSuper];
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper, dst += 176) {
    encode_k_scales(x, 31, -0.5f, 15, dst, L);
    uint8_t qh[32] = {};
    std::byte* ql = dst + 48;
    uint8_t m1 = 1, m2 = 2;
    for (int j = 0; j < kSuper; j += 64, ql += 32, m1 = static_cast<uint8_t>(m1 << 2), m2 = static_cast<uint8_t>(m2 << 2))
      for (int l = 0; l < 32; ++l) {
        int l1 = L[j + l], l2 = L[j + l + 32];
        if (l1 > 15) l1 -= 16, qh[l] |= m1;
        if (l2 > 15) l2 -= 16, qh[l] |= m2;
        ql[l] = static_cast<std::byte>(l1 | (l2 << 4));
      }
    std::memcpy(dst + 16, qh, 32);
  }
}

void quantize_q6_k(const float* x, int64_t n, std::byte* dst) {
  int8_t L[kSuper];
  float scales[16];
  for (int64_t b = 0; b < n / kSuper; ++b, x += kSuper, dst += 210) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_scale_signed(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    std::memset(dst, 0, 210);
    if (max_abs_scale < kGroupMaxEps) continue;  // an all-zero block: d = 0 and zero levels
    const float iscale = -128.f / max_scale;
    store_f16(dst + 208, 1 / iscale);
    int8_t sc[16];
    for (int ib = 0; ib < 16; ++ib) sc[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    std::memcpy(dst + 192, sc, 16);
    const float d_all = load_f16(dst + 208);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(sc[j]);
      if (d == 0.0f) continue;
      for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    std::byte* ql = dst;
    std::byte* qh = dst + 128;
    for (int j = 0; j < kSuper; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        auto q = [&](int k) { return static_cast<uint8_t>(L[j + l + k]); };
        ql[l] = static_cast<std::byte>((q(0) & 0xF) | ((q(64) & 0xF) << 4));
        ql[l + 32] = static_cast<std::byte>((q(32) & 0xF) | ((q(96) & 0xF) << 4));
        qh[l] = static_cast<std::byte>((q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6));
      }
  }
}

void dequantize_q4_k(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kSuper; ++b, src += 144) {
    const float d = load_f16(src), min = load_f16(src + 2);
    const auto* scales = reinterpret_cast<const uint8_t*>(src + 4);
    const auto* q = reinterpret_cast<const uint8_t*>(src + 16);
    for (int j = 0, is = 0; j < kSuper; j += 64, q += 32, is += 2) {
      uint8_t sc, m;
      unpack_scale_min(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      unpack_scale_min(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kSuper; ++b, src += 176) {
    const float d = load_f16(src), min = load_f16(src + 2);
    const auto* scales = reinterpret_cast<const uint8_t*>(src + 4);
    const auto* qh = reinterpret_cast<const uint8_t*>(src + 16);
    const auto* ql = reinterpret_cast<const uint8_t*>(src + 48);
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kSuper; j += 64, ql += 32, is += 2, u1 = static_cast<uint8_t>(u1 << 2), u2 = static_cast<uint8_t>(u2 << 2)) {
      uint8_t sc, m;
      unpack_scale_min(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
      unpack_scale_min(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_k(const std::byte* src, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kSuper; ++b, src += 210) {
    const float d = load_f16(src + 208);
    const auto* ql = reinterpret_cast<const uint8_t*>(src);
    const auto* qh = reinterpret_cast<const uint8_t*>(src + 128);
    const auto* sc = reinterpret_cast<const int8_t*>(src + 192);
    for (int j = 0; j < kSuper; j += 128, y += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        int is = l / 16;
        int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
  }
}

}  // namespace moeforge
