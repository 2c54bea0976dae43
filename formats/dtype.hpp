// Element types of safetensors tensors and their conversion to and from float32.
// Rounding to 16-bit floats is round-to-nearest-even; NaN stays NaN (sign and top payload kept,
// quiet bit set) and Inf stays Inf. The enum order is the official safetensors Dtype order,
// which the writer uses to lay tensors out the way the reference serializer does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moeforge {

enum class DType : uint8_t {
  kBool, kU8, kI8, kF8E5M2, kF8E4M3, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64,
};
inline constexpr int kDTypeCount = 15;

struct DTypeInfo {
  std::string_view name;        // as written in safetensors headers: "BF16"
  std::string_view torch_name;  // as written in config.json torch_dtype: "bfloat16"
  size_t size;                  // bytes per element
  bool is_float;
};

const DTypeInfo& dtype_info(DType t);
inline size_t dtype_size(DType t) { return dtype_info(t).size; }
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }

// "BF16" → kBF16; nullopt for names safetensors does not define.
std::optional<DType> find_dtype(std::string_view safetensors_name);
// User-facing names for output dtypes: bf16, f16, f32, f64, bfloat16, float16, float32, float64.
std::optional<DType> find_output_dtype(std::string_view user_name);
// True when from_f32 can write this type.
bool is_writable_float(DType t);

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float f8e4m3_to_f32(uint8_t bits);  // e4m3fn: no infinities, S.1111.111 is NaN
float f8e5m2_to_f32(uint8_t bits);

// Writes n float64 values as type t with a single rounding: directly for F32/F64, and for the
// 16-bit types through float32 rounded to odd, which makes the second rounding exact.
void from_f64(DType t, const double* src, size_t n, std::byte* dst);

// Converts n elements of type t at src (any alignment) to float32 / float64.
void to_f32(DType t, const std::byte* src, size_t n, float* dst);
void to_f64(DType t, const std::byte* src, size_t n, double* dst);
// Writes n float32 values as type t (F32, F64, F16 or BF16) at dst (any alignment).
void from_f32(DType t, const float* src, size_t n, std::byte* dst);
// n float32 values → IEEE half bits at dst (any alignment), eight at a time with F16C where the
// build has it (the same round-to-nearest-even); runs of eight holding a NaN, and the tail, go
// through `scalar`, so callers choose their NaN rule.
void f32_to_f16_array(const float* src, size_t n, std::byte* dst, uint16_t (*scalar)(float));

}  // namespace moeforge
