#include "engine/rope.hpp"

#include <cmath>

#include "core/error.hpp"

namespace moeforge {
namespace {

void apply_llama3(std::vector<float>& inv_freq, const nlohmann::json& s, const std::string& label) {
  double factor = s.value("factor", 8.0), low = s.value("low_freq_factor", 1.0), high = s.value("high_freq_factor", 4.0);
  double old_len = s.value("original_max_position_embeddings", 8192.0);
  if (high == low) throw FormatError(label + ": rope_scaling llama3 needs high_freq_factor != low_freq_factor");
  double low_wavelen = old_len / low, high_wavelen = old_len / high;
  for (auto& f : inv_freq) {
    double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) continue;  // high frequency: unchanged
    if (wavelen > low_wavelen) {
      f = static_cast<float>(f / factor);
    } else {
      double smooth = (old_len / wavelen - low) / (high - low);
      f = static_cast<float>((1 - smooth) * f / factor + smooth * f);
    }
  }
}

}  // namespace

Rope::Rope(const ModelConfig& c, int64_t dim) : dim_(dim) {
  for (int64_t i = 0; i < dim / 2; ++i) {
    // As transformers computes it: float32 exponent, float32 power, float32 reciprocal.
    float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv_freq_.push_back(1.0f / std::pow(static_cast<float>(c.rope_theta), exponent));
  }
  if (c.rope_scaling.is_object()) {
    std::string type = c.rope_scaling.value("rope_type", c.rope_scaling.value("type", std::string("default")));
    if (type == "linear") {
      float factor = c.rope_scaling.value("factor", 1.0f);
      for (auto& f : inv_freq_) f /= factor;
    } else if (type == "llama3") {
      apply_llama3(inv_freq_, c.rope_scaling, c.label);
    } else if (type != "default") {
      throw UnsupportedError(c.label + ": rope_scaling type \"" + type + "\" (the engine supports linear and llama3)");
    }
  }
}

void Rope::prepare(int64_t positions) {
  if (positions <= cached_) return;
  int64_t half = dim_ / 2;
  cos_.resize(static_cast<size_t>(positions * half));
  sin_.resize(cos_.size());
  for (int64_t p = cached_; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      float angle = static_cast<float>(p) * inv_freq_[static_cast<size_t>(i)];
      cos_[p * half + i] = std::cos(angle);
      sin_[p * half + i] = std::sin(angle);
    }
  cached_ = positions;
}

void Rope::apply(float* x, int heads, int64_t stride, int64_t position) const {
  int64_t half = dim_ / 2;
  const float* c = cos_.data() + position * half;
  const float* s = sin_.data() + position * half;
  for (int h = 0; h < heads; ++h) {
    float* v = x + h * stride;
    for (int64_t i = 0; i < half; ++i) {
      float a = v[i], b = v[i + half];
      v[i] = a * c[i] - b * s[i];
      v[i + half] = b * c[i] + a * s[i];
    }
  }
}

}  // namespace moeforge
