// Rotary position embedding in Hugging Face's rotate-half layout: for i < d/2,
// (x_i, x_{i+d/2}) is rotated by angle position · inv_freq_i. inv_freq_i = theta^(-2i/d),
// adjusted by rope_scaling types "linear" (÷ factor) and "llama3" (wavelength-dependent).
#pragma once
#include <cstdint>
#include <vector>

#include "model/model_config.hpp"

namespace moeforge {

class Rope {
 public:
  Rope(const ModelConfig& config, int64_t dim);
  // Rotates `heads` consecutive vectors of length `stride` (first `dim` entries) at `position`.
  // Positions must have been prepared (single-threaded) first.
  void apply(float* x, int heads, int64_t stride, int64_t position) const;
  void prepare(int64_t positions);
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int64_t dim_;
  std::vector<float> inv_freq_;
  std::vector<float> cos_, sin_;  // [position][dim/2]
  int64_t cached_ = 0;
};

}  // namespace moeforge
