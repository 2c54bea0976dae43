#include "formats/dtype.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <vector>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "core/error.hpp"

namespace moeforge {
namespace {

constexpr std::array<DTypeInfo, kDTypeCount> kInfos = {{
    {"BOOL", "bool", 1, false},     {"U8", "uint8", 1, false},
    {"I8", "int8", 1, false},       {"F8_E5M2", "float8_e5m2", 1, true},
    {"F8_E4M3", "float8_e4m3fn", 1, true}, {"I16", "int16", 2, false},
    {"U16", "uint16", 2, false},    {"F16", "float16", 2, true},
    {"BF16", "bfloat16", 2, true},  {"I32", "int32", 4, false},
    {"U32", "uint32", 4, false},    {"F32", "float32", 4, true},
    {"F64", "float64", 8, true},    {"I64", "int64", 8, false},
    {"U64", "uint64", 8, false},
}};

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// One element of any type as double (exact for every type but U64/I64 beyond 2^53).
double element_as_f64(DType t, const std::byte* p) {
  switch (t) {
    case DType::kBool: return load<uint8_t>(p) != 0 ? 1.0 : 0.0;
    case DType::kU8: return load<uint8_t>(p);
    case DType::kI8: return load<int8_t>(p);
    case DType::kF8E5M2: return f8e5m2_to_f32(load<uint8_t>(p));
    case DType::kF8E4M3: return f8e4m3_to_f32(load<uint8_t>(p));
    case DType::kI16: return load<int16_t>(p);
    case DType::kU16: return load<uint16_t>(p);
    case DType::kF16: return f16_to_f32(load<uint16_t>(p));
    case DType::kBF16: return bf16_to_f32(load<uint16_t>(p));
    case DType::kI32: return load<int32_t>(p);
    case DType::kU32: return load<uint32_t>(p);
    case DType::kF32: return load<float>(p);
    case DType::kF64: return load<double>(p);
    case DType::kI64: return static_cast<double>(load<int64_t>(p));
    case DType::kU64: return static_cast<double>(load<uint64_t>(p));
  }
  return 0.0;
}

}  // namespace

const DTypeInfo& dtype_info(DType t) { return kInfos[static_cast<size_t>(t)]; }

std::optional<DType> find_dtype(std::string_view name) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (kInfos[i].name == name) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<DType> find_output_dtype(std::string_view n) {
  if (n == "bf16" || n == "bfloat16" || n == "BF16") return DType::kBF16;
  if (n == "f16" || n == "fp16" || n == "float16" || n == "F16") return DType::kF16;
  if (n == "f32" || n == "fp32" || n == "float32" || n == "F32") return DType::kF32;
  if (n == "f64" || n == "float64" || n == "F64") return DType::kF64;
  return std::nullopt;
}

bool is_writable_float(DType t) {
  return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16 || t == DType::kF64;
}

float bf16_to_f32(uint16_t bits) { return float_of(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  uint32_t u = bits_of(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding_bias) >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return float_of(bits_of(v) | sign);
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));
  return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float value) {
  uint32_t u = bits_of(value);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((a >> 13) & 0x3ffu);
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {                         // below 2^-14: f16 subnormal (or zero)
    float scaled = float_of(a) * 16777216.0f;    // exact: multiples of 2^-24 become integers
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t h = ((((a >> 23) - 112u) << 10) | ((a >> 13) & 0x3ffu));
  uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

float f8e4m3_to_f32(uint8_t b) {
  float sign = (b & 0x80) ? -1.0f : 1.0f;
  int exp = (b >> 3) & 0xf;
  int mant = b & 0x7;
  if (exp == 15 && mant == 7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(1.0f + mant / 8.0f, exp - 7);
}

float f8e5m2_to_f32(uint8_t b) { return f16_to_f32(static_cast<uint16_t>(b) << 8); }

void to_f32(DType t, const std::byte* src, size_t n, float* dst) {
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load<uint16_t>(src + 2 * i));
      return;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load<uint16_t>(src + 2 * i));
      return;
    default: {
      size_t s = dtype_size(t);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(element_as_f64(t, src + s * i));
    }
  }
}

void to_f64(DType t, const std::byte* src, size_t n, double* dst) {
  size_t s = dtype_size(t);
  for (size_t i = 0; i < n; ++i) dst[i] = element_as_f64(t, src + s * i);
}

namespace {

// float64 → float32 rounded to odd: truncate toward zero, and set the last bit if anything was cut.
float round_to_odd(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d || std::isnan(d) || std::isinf(f)) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return float_of(bits_of(f) | 1u);
}

}  // namespace

void from_f64(DType t, const double* src, size_t n, std::byte* dst) {
  if (t == DType::kF64) {
    std::memcpy(dst, src, n * 8);
    return;
  }
  thread_local std::vector<float> f;
  f.resize(n);
  for (size_t i = 0; i < n; ++i) f[i] = t == DType::kF32 ? static_cast<float>(src[i]) : round_to_odd(src[i]);
  from_f32(t, f.data(), n, dst);
}

void from_f32(DType t, const float* src, size_t n, std::byte* dst) {
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d = src[i];
        std::memcpy(dst + 8 * i, &d, 8);
      }
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::kF16: f32_to_f16_array(src, n, dst, f32_to_f16); return;
    default:
      throw UnsupportedError("cannot write " + std::string(dtype_name(t)) +
                             " from float32 (writable float types: F32, F64, F16, BF16)");
  }
}

void f32_to_f16_array(const float* src, size_t n, std::byte* dst, uint16_t (*scalar)(float)) {
  size_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (size_t j = i; j < i + 8; ++j) {
        uint16_t h = scalar(src[j]);
        std::memcpy(dst + 2 * j, &h, 2);
      }
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
#endif
  for (; i < n; ++i) {
    uint16_t h = scalar(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

}  // namespace moeforge
