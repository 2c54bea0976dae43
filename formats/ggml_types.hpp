// The element types of GGUF tensors (ggml types): id, name, and block geometry. A row of ne[0]
// elements is ne[0] / block elements stored as that many blocks of `bytes` bytes each; rows never
// share a block, so any range of rows is a contiguous byte range.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moeforge {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30, kMXFP4 = 39,
};

struct GgmlTypeInfo {
  const char* name;  // "Q4_K", as llama.cpp prints it
  uint32_t block;    // elements per block
  uint32_t bytes;    // bytes per block
};

// Null for ids ggml does not define (or retired).
const GgmlTypeInfo* find_ggml_type(uint32_t id);
const GgmlTypeInfo& ggml_type_info(GgmlType t);  // t must be defined
inline std::string ggml_type_name(GgmlType t) { return ggml_type_info(t).name; }
// "q4_k", "Q4_K", "bf16" → the type; nullopt for other names.
std::optional<GgmlType> find_ggml_type_by_name(std::string_view name);
// Bytes of one row of ne0 elements; ne0 must be a multiple of the block size.
uint64_t ggml_row_bytes(GgmlType t, uint64_t ne0);

}  // namespace moeforge
