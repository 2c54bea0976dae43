// Building safetensors files: the header layout shared by every writer (tensors ordered like the
// reference serializer — dtype descending, then name — compact JSON, "__metadata__" first,
// padded with spaces to a multiple of 8), and a writer for small in-memory files such as
// calibration statistics (atomic: NAME.partial, fsync, rename).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/output_safety.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {

struct HeaderEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t nbytes;
};

// Sorts `entries` into data order and returns the header text; offsets[i] is entry i's offset
// within the data area.
std::string build_safetensors_header(std::vector<HeaderEntry>& entries, const std::map<std::string, std::string>& metadata,
                                     std::vector<uint64_t>* offsets);

struct MemoryTensor {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<std::byte> bytes;
};

// Writes one in-memory safetensors file as part of an output transaction (committed by the caller).
void write_safetensors_file(OutputTransaction& tx, const std::filesystem::path& path, const std::vector<MemoryTensor>& tensors,
                            const std::map<std::string, std::string>& metadata);

}  // namespace moeforge
