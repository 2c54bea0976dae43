#include "formats/tensor_info.hpp"

#include <algorithm>

namespace moeforge {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t TensorInfo::numel() const { return shape_numel(shape); }
int64_t TensorInfo::rows() const { return shape.size() < 2 ? 1 : shape[0]; }
int64_t TensorInfo::cols() const { return shape.size() < 2 ? numel() : numel() / std::max<int64_t>(shape[0], 1); }

}  // namespace moeforge
