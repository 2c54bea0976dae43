#include "engine/rope.hpp"

#include <algorithm>
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

double number(const nlohmann::json& s, const char* key, double fallback) {
  return s.contains(key) && s[key].is_number() ? s[key].get<double>() : fallback;
}

// transformers' _compute_yarn_parameters, in float32 where it computes in float32.
float apply_yarn(std::vector<float>& inv_freq, const ModelConfig& c, int64_t dim) {
  const nlohmann::json& s = c.rope_scaling;
  if (!s.contains("original_max_position_embeddings") || !s["original_max_position_embeddings"].is_number())
    throw FormatError(c.label + ": rope_scaling yarn needs original_max_position_embeddings");
  double orig = s["original_max_position_embeddings"].get<double>();
  double factor = number(s, "factor", 0.0);
  if (factor == 0.0) factor = number(c.raw, "max_position_embeddings", orig) / orig;
  double mscale = number(s, "mscale", 0.0), mscale_all_dim = number(s, "mscale_all_dim", 0.0);
  double attention_factor = number(s, "attention_factor", -1.0);
  if (attention_factor < 0)
    attention_factor = mscale != 0 && mscale_all_dim != 0 ? yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim) : yarn_mscale(factor);
  double beta_fast = number(s, "beta_fast", 0.0), beta_slow = number(s, "beta_slow", 0.0);
  if (beta_fast == 0) beta_fast = 32;  // transformers: `or 32`, `or 1`
  if (beta_slow == 0) beta_slow = 1;
  const double base = c.rope_theta, d = static_cast<double>(dim);
  auto correction_dim = [&](double rotations) { return d * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(base)); };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (!s.contains("truncate") || !s["truncate"].is_boolean() || s["truncate"].get<bool>()) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, d - 1);
  if (low == high) high += 0.001;
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    float pos_freq = std::pow(static_cast<float>(base), static_cast<float>(2 * i) / static_cast<float>(dim));
    float extrapolation = 1.0f / pos_freq;
    float interpolation = 1.0f / (static_cast<float>(factor) * pos_freq);
    float ramp = std::clamp((static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f, 1.0f);
    float extrapolation_factor = 1.0f - ramp;
    inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return static_cast<float>(attention_factor);
}

}  // namespace

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

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
    } else if (type == "yarn") {
      attention_factor_ = apply_yarn(inv_freq_, c, dim);
    } else if (type != "default") {
      throw UnsupportedError(c.label + ": rope_scaling type \"" + type + "\" (the engine supports linear, llama3 and yarn)");
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
      cos_[p * half + i] = std::cos(angle) * attention_factor_;
      sin_[p * half + i] = std::sin(angle) * attention_factor_;
    }
  cached_ = positions;
}

// Rotates the pairs (v[i·step], v[i·step + partner]) of every head: rotate-half has step 1 and
// partner d/2, the interleaved layout step 2 and partner 1.
void Rope::rotate(float* x, int heads, int64_t stride, int64_t position, int64_t step, int64_t partner) const {
  int64_t half = dim_ / 2;
  const float* c = cos_.data() + position * half;
  const float* s = sin_.data() + position * half;
  for (int h = 0; h < heads; ++h) {
    float* v = x + h * stride;
    for (int64_t i = 0; i < half; ++i) {
      float a = v[i * step], b = v[i * step + partner];
      v[i * step] = a * c[i] - b * s[i];
      v[i * step + partner] = b * c[i] + a * s[i];
    }
  }
}

void Rope::apply(float* x, int heads, int64_t stride, int64_t position) const { rotate(x, heads, stride, position, 1, dim_ / 2); }

void Rope::apply_pairs(float* x, int heads, int64_t stride, int64_t position) const { rotate(x, heads, stride, position, 2, 1); }

}  // namespace moeforge
