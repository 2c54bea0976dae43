// Encoding float32 rows as ggml tensor types and decoding them back, bit-exact with llama.cpp's
// reference functions (quantize_row_*_ref / dequantize_row_*, what llama-quantize runs without an
// importance matrix). Block layouts, all little-endian, f16 = IEEE half bits:
//   Q8_0  (34 B / 32):  f16 d; i8 qs[32]                                  x = d·q
//   Q4_0  (18 B / 32):  f16 d; u8 qs[16] (low nibble j, high nibble j+16)  x = d·(q − 8)
//   Q4_K (144 B / 256): f16 d; f16 dmin; u8 scales[12] (8 × 6-bit scale + 6-bit min); u8 qs[128]
//   Q5_K (176 B / 256): as Q4_K plus u8 qh[32] (5th bit) before qs
//   Q6_K (210 B / 256): u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d
//   MXFP4 (17 B / 32):  u8 e (E8M0); u8 qs[16]                             x = kv[q]·2^(e−128)
// F16 rounds to nearest even with NaN → sign|0x7E00 (ggml's rule); BF16 as ggml (NaN quieted).
// The quantiser files are compiled with -ffp-contract=off: an FMA changes the chosen scales.
#pragma once
#include <cstddef>
#include <cstdint>

#include "formats/ggml_types.hpp"

namespace moeforge {

bool can_encode_ggml(GgmlType t);  // F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K
bool can_decode_ggml(GgmlType t);  // the above plus MXFP4
// n elements (a multiple of the block size) → ggml_row_bytes(t, n) bytes at dst.
void encode_ggml(GgmlType t, const float* src, int64_t n, std::byte* dst);
void decode_ggml(GgmlType t, const std::byte* src, int64_t n, float* dst);

uint16_t ggml_f16_from_f32(float value);

// One family of blocks per file (quant_blocks32.cpp, quant_kquants.cpp).
void quantize_q8_0(const float* x, int64_t n, std::byte* dst);
void quantize_q4_0(const float* x, int64_t n, std::byte* dst);
void dequantize_q8_0(const std::byte* src, int64_t n, float* y);
void dequantize_q4_0(const std::byte* src, int64_t n, float* y);
void dequantize_mxfp4(const std::byte* src, int64_t n, float* y);
void quantize_q4_k(const float* x, int64_t n, std::byte* dst);
void quantize_q5_k(const float* x, int64_t n, std::byte* dst);
void quantize_q6_k(const float* x, int64_t n, std::byte* dst);
void dequantize_q4_k(const std::byte* src, int64_t n, float* y);
void dequantize_q5_k(const std::byte* src, int64_t n, float* y);
void dequantize_q6_k(const std::byte* src, int64_t n, float* y);

}  // namespace moeforge
