// Tensors that are not stored as they are read: a view computes its values from another file
// (a GGUF tensor seen under its Hugging Face name: one expert of a stacked tensor, rows in the
// other RoPE order, quantised blocks decoded). TensorInfo::source points at one; the readers in
// tensor_reader.hpp call it instead of reading safetensors bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/ggml_types.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {

class MappedFile;

// The stored ggml blocks behind a view, when the view is such a slab unchanged but for a row
// order both directions agree on (`layout`): writers may copy them byte for byte.
struct GgmlSlab {
  const MappedFile* file = nullptr;
  uint64_t offset = 0;     // absolute offset of the first row
  uint64_t row_bytes = 0;  // bytes of one stored row
  int64_t rows = 0;
  GgmlType type = GgmlType::kF32;
  std::string tensor;      // the stored tensor's name
  std::string layout;      // "" or a row permutation such as "rope-pairs 16"
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // Rows [r0, r1) of t encoded as t.dtype / as float32.
  virtual void read_rows(const TensorInfo& t, int64_t r0, int64_t r1, std::byte* dst) const = 0;
  virtual void read_rows_f32(const TensorInfo& t, int64_t r0, int64_t r1, float* dst) const = 0;
  virtual const GgmlSlab* slab() const { return nullptr; }
};

}  // namespace moeforge
