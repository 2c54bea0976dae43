// GGUF reader (versions 2 and 3), for inspection and for the vocabulary stored in the file.
// Byte layout (little-endian): "GGUF" magic, u32 version, u64 tensor count, u64 key/value count;
// then each key/value: string key (u64 length + UTF-8 bytes), u32 value type, value (arrays:
// u32 element type, u64 count, elements); then each tensor: string name, u32 n_dims, u64 ne[n]
// (fastest dimension first), u32 ggml type, u64 offset relative to the data area; the data area
// starts at the next multiple of general.alignment (default 32). Every count, length and offset
// is checked against the file size before it is used.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace moeforge {

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: fastest-varying first
  uint32_t type = 0;
  std::string type_name;     // "F16", "Q4_K", or "type 42" when unknown
  uint64_t offset = 0;       // relative to data_start
  uint64_t nbytes = 0;       // 0 when the type is unknown
  std::vector<uint64_t> shape() const;  // row-major (PyTorch) order: ne reversed
  uint64_t numel() const;
};

struct GgufFile {
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_start = 0;
  uint64_t file_size = 0;
  // key → {"type": "UINT32" | "STRING" | "ARRAY" ..., "value": ..., "elem_type" for arrays}
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  std::vector<GgufTensor> tensors;

  const nlohmann::ordered_json* find_value(const std::string& key) const;  // the "value" or null
};

GgufFile parse_gguf(std::span<const std::byte> file, const std::string& label);
GgufFile read_gguf(const std::filesystem::path& path);
bool looks_like_gguf(const std::filesystem::path& path);

}  // namespace moeforge
