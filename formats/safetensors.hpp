// safetensors reader and validator.
// Byte layout: [u64 little-endian N][N bytes of UTF-8 JSON header][data area].
// The header maps each tensor name to {"dtype","shape","data_offsets":[begin,end]} (offsets
// relative to the data area) plus an optional "__metadata__" string→string map. A valid file has
// known dtypes, numel × element size == end − begin, and tensors that tile the data area exactly:
// offsets start at 0, no gaps, no overlaps, the last one ends at the end of the file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/mapped_file.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // same cap as the reference reader

struct SafetensorsHeader {
  uint64_t header_len = 0;
  uint64_t data_start = 0;  // 8 + header_len
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;  // in data-area order
};

// Validates everything listed above; throws FormatError naming `label` and the tensor.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& label);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::string& path() const { return map_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  uint64_t file_size() const { return map_.size(); }
  // The tensor's bytes inside the mapping (valid while this object lives).
  std::span<const std::byte> data(const TensorInfo& t) const;
  const MappedFile& mapping() const { return map_; }

 private:
  MappedFile map_;
  SafetensorsHeader header_;
};

}  // namespace moeforge
