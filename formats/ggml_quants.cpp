#include "formats/ggml_quants.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "formats/dtype.hpp"

namespace moeforge {

uint16_t ggml_f16_from_f32(float value) {
  if (std::isnan(value)) return static_cast<uint16_t>((std::signbit(value) ? 0x8000u : 0u) | 0x7E00u);
  return f32_to_f16(value);
}

bool can_encode_ggml(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: case GgmlType::kQ8_0:
    case GgmlType::kQ4_0: case GgmlType::kQ4_K: case GgmlType::kQ5_K: case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

bool can_decode_ggml(GgmlType t) { return can_encode_ggml(t) || t == GgmlType::kMXFP4; }

void encode_ggml(GgmlType t, const float* src, int64_t n, std::byte* dst) {
  switch (t) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::kF16: f32_to_f16_array(src, static_cast<size_t>(n), dst, ggml_f16_from_f32); return;
    case GgmlType::kBF16: from_f32(DType::kBF16, src, static_cast<size_t>(n), dst); return;
    case GgmlType::kQ8_0: quantize_q8_0(src, n, dst); return;
    case GgmlType::kQ4_0: quantize_q4_0(src, n, dst); return;
    case GgmlType::kQ4_K: quantize_q4_k(src, n, dst); return;
    case GgmlType::kQ5_K: quantize_q5_k(src, n, dst); return;
    case GgmlType::kQ6_K: quantize_q6_k(src, n, dst); return;
    default: throw UnsupportedError("writing ggml type " + ggml_type_name(t) + " is not supported (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k are)");
  }
}

void decode_ggml(GgmlType t, const std::byte* src, int64_t n, float* dst) {
  switch (t) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::kF16: to_f32(DType::kF16, src, static_cast<size_t>(n), dst); return;
    case GgmlType::kBF16: to_f32(DType::kBF16, src, static_cast<size_t>(n), dst); return;
    case GgmlType::kQ8_0: dequantize_q8_0(src, n, dst); return;
    case GgmlType::kQ4_0: dequantize_q4_0(src, n, dst); return;
    case GgmlType::kQ4_K: dequantize_q4_k(src, n, dst); return;
    case GgmlType::kQ5_K: dequantize_q5_k(src, n, dst); return;
    case GgmlType::kQ6_K: dequantize_q6_k(src, n, dst); return;
    case GgmlType::kMXFP4: dequantize_mxfp4(src, n, dst); return;
    default: throw UnsupportedError("reading ggml type " + ggml_type_name(t) + " is not supported (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, mxfp4 are)");
  }
}

}  // namespace moeforge
