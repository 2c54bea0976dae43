// MXFP4 as the gpt-oss checkpoints store their experts (OCP microscaling, FP4 E2M1 values with one
// E8M0 scale per block of 32). A matrix of R rows (output features) × C columns (input features,
// C a multiple of 32) is two U8 tensors:
//   blocks [R, C/32, 16]: input column c of row r is in block g = c / 32, byte (c % 32) / 2,
//                          low nibble for even c, high nibble for odd c
//   scales [R, C/32]:     value = FP4[nibble] · 2^(scale − 127)
// FP4 (sign = bit 3): +0, +0.5, +1, +1.5, +2, +3, +4, +6, −0, −0.5, −1, −1.5, −2, −3, −4, −6.
// Every value is exact in float32 (and bfloat16); no scale code is special (255 gives 2^128 · v).
#pragma once
#include <cstdint>

namespace moeforge {

inline constexpr int64_t kMxfp4Block = 32;       // values per scale
inline constexpr int64_t kMxfp4BlockBytes = 16;  // bytes per block

float fp4_e2m1_value(uint8_t nibble);
// Dequantises `rows` rows of `cols` values: blocks holds rows·cols/2 bytes, scales rows·cols/32.
void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t rows, int64_t cols, float* out);

}  // namespace moeforge
