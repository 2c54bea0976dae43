// Float32 views of checkpoint tensors for the forward engine. A float32 tensor whose bytes are
// 4-byte aligned is used in place (zero copy from the memory map); any other dtype is converted
// once into an owned buffer. Mapped pages are dropped from the process when the view dies, so a
// layer-by-layer pass keeps only one layer resident.
#pragma once
#include <Eigen/Core>
#include <memory>
#include <string>
#include <vector>

#include "engine/matrix.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {


class Weight {
 public:
  Weight() = default;
  explicit Weight(const TensorInfo& t);
  // Owned values (e.g. a dequantised or re-laid-out expert), rows × cols.
  Weight(std::string name, int64_t rows, int64_t cols, std::vector<float> values);
  ~Weight();
  Weight(Weight&&) noexcept;
  Weight& operator=(Weight&&) noexcept;
  Weight(const Weight&) = delete;
  Weight& operator=(const Weight&) = delete;

  bool empty() const { return data_ == nullptr; }
  const float* data() const { return data_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t size() const { return rows_ * cols_; }
  ConstMatMap mat() const { return ConstMatMap(data_, rows_, cols_); }
  const std::string& name() const { return name_; }

 private:
  void release();
  std::string name_;
  const TensorInfo* info_ = nullptr;
  std::vector<float> owned_;
  const float* data_ = nullptr;
  int64_t rows_ = 0, cols_ = 0;
  bool mapped_ = false;
};

}  // namespace moeforge
