// What a checkpoint says about one tensor: name, element type, shape and where its bytes are.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/dtype.hpp"

namespace moeforge {

using Shape = std::vector<int64_t>;

class SafetensorsFile;
class TensorSource;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0;  // data_offsets, relative to the start of the data area
  uint64_t end = 0;
  const SafetensorsFile* file = nullptr;  // set once the file is open
  const TensorSource* source = nullptr;   // a view computed from another file (tensor_source.hpp)

  uint64_t nbytes() const { return end - begin; }
  int64_t numel() const;
  // Rows and columns when the tensor is read as a matrix: [d0, d1*d2*...]; a vector is [1, n].
  int64_t rows() const;
  int64_t cols() const;
};

int64_t shape_numel(const Shape& s);
std::string shape_string(const Shape& s);  // "[8, 64]"

}  // namespace moeforge
