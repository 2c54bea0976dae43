// Rotary position embedding. Hugging Face's rotate-half layout: for i < d/2, (x_i, x_{i+d/2}) is
// rotated by angle position · inv_freq_i; the interleaved layout of DeepSeek's MLA
// (rope_interleave) rotates consecutive pairs (x_2i, x_2i+1) instead — the same as transformers'
// de-interleave + rotate-half up to a permutation that q and k share. inv_freq_i = theta^(-2i/d),
// adjusted by rope_scaling "linear" (÷ factor), "llama3" (wavelength-dependent) and "yarn"
// (ramp between interpolated and extrapolated frequencies; cos and sin scaled by its
// attention factor). d is the rotary dimension (partial_rotary_factor, MLA's qk_rope_head_dim).
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
  // The same with consecutive pairs (interleaved layout).
  void apply_pairs(float* x, int heads, int64_t stride, int64_t position) const;
  void prepare(int64_t positions);
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  float attention_factor() const { return attention_factor_; }

 private:
  void rotate(float* x, int heads, int64_t stride, int64_t position, int64_t step, int64_t partner) const;
  int64_t dim_;
  std::vector<float> inv_freq_;
  float attention_factor_ = 1.0f;  // multiplies cos and sin (YaRN)
  std::vector<float> cos_, sin_;   // [position][dim/2]
  int64_t cached_ = 0;
};

// YaRN's attention scale helper as transformers defines it: 1 for scale <= 1, else 0.1·m·ln(scale) + 1.
double yarn_mscale(double scale, double mscale = 1.0);

}  // namespace moeforge
