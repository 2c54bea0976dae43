// Interpolating methods (mergekit linear.py, nearswap.py, passthrough.py, slerp.py, nuslerp.py,
// multislerp.py, karcher.py). Whole-tensor quantities (norms, dot products, the Gram matrix of
// karcher's iteration) come from one or two streamed passes in float64; the output is then a
// per-element combination with float32 coefficients.
#include <cmath>

#include "core/error.hpp"
#include "merge/merge_kernels.hpp"

namespace moeforge {
namespace {

// Σ_i c_i x_i per element with fixed coefficients (float32 products summed in input order), or
// with a base: base + Σ_i c_i (x_i − base), the task-vector form.
class Combination : public StreamMerger {
 public:
  explicit Combination(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {}
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* base = delta_form_ ? b.x[static_cast<size_t>(spec_.base)] : nullptr;
      for (size_t e = 0; e < b.n; ++e) {
        float acc = 0;
        for (size_t i = 0; i < coef_.size(); ++i) {
          if (base && static_cast<int>(i) == spec_.base) continue;
          acc += coef_[i] * (base ? b.x[i][e] - base[e] : b.x[i][e]);
        }
        o[e] = base ? base[e] + acc : acc;
      }
    });
  }

 protected:
  std::vector<float> coef_;  // per input
  bool delta_form_ = false;
};

class Scaled : public Combination {
 public:
  Scaled(TensorMergeSpec spec, size_t input, double scale) : Combination(std::move(spec)), input_(input), scale_(static_cast<float>(scale)) {}
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* x = b.x[input_];
      if (scale_ == 1.0f) std::copy(x, x + b.n, o);
      else
        for (size_t e = 0; e < b.n; ++e) o[e] = x[e] * scale_;
    });
  }

 private:
  size_t input_;
  float scale_;
};

// linear: (Σ w_i x_i) / Σ w_i (no guard against Σ w = 0, as mergekit).
class Linear : public Combination {
 public:
  explicit Linear(TensorMergeSpec spec) : Combination(std::move(spec)) {
    normalize_ = global_param(spec_, "normalize") != 0;
    for (size_t i = 0; i < spec_.inputs.size(); ++i) {
      weights_.push_back(static_cast<float>(model_param(spec_, i, "weight")));
      sum_ += weights_.back();
    }
  }
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      for (size_t e = 0; e < b.n; ++e) {
        float acc = weights_[0] * b.x[0][e];
        for (size_t i = 1; i < weights_.size(); ++i) acc += weights_[i] * b.x[i][e];
        o[e] = normalize_ ? acc / sum_ : acc;
      }
    });
  }

 private:
  std::vector<float> weights_;
  float sum_ = 0;
  bool normalize_ = true;
};

// nearswap: w = clamp(t / max(|a − b|, 1e-6), 0, 1); w b + (1 − w) a.
class Nearswap : public Combination {
 public:
  explicit Nearswap(TensorMergeSpec spec) : Combination(std::move(spec)) {
    t_ = static_cast<float>(global_param(spec_, "t"));
    auto others = non_base_inputs(spec_);
    other_ = others.empty() ? static_cast<size_t>(spec_.base) : others[0];
  }
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* a = b.x[static_cast<size_t>(spec_.base)];
      const float* x = b.x[other_];
      for (size_t e = 0; e < b.n; ++e) {
        float w = std::clamp(t_ / std::max(std::fabs(a[e] - x[e]), 1e-6f), 0.0f, 1.0f);
        o[e] = w * x[e] + (1 - w) * a[e];
      }
    });
  }

 private:
  float t_ = 0;
  size_t other_ = 0;
};

// Σ over the whole tensor of products of (task) vectors, in float64: gram[i][j] = v_i · v_j.
std::vector<std::vector<double>> gram(const InputStream& stream, const std::vector<size_t>& inputs, int base) {
  const size_t m = inputs.size();
  std::vector<std::vector<double>> g(m, std::vector<double>(m, 0.0));
  stream.for_all([&](const Block& b) {
    for (size_t e = 0; e < b.n; ++e) {
      float base_v = base >= 0 ? b.x[static_cast<size_t>(base)][e] : 0.0f;
      for (size_t i = 0; i < m; ++i) {
        double vi = base >= 0 ? static_cast<double>(b.x[inputs[i]][e] - base_v) : b.x[inputs[i]][e];
        for (size_t j = i; j < m; ++j) {
          double vj = base >= 0 ? static_cast<double>(b.x[inputs[j]][e] - base_v) : b.x[inputs[j]][e];
          g[i][j] += vi * vj;
        }
      }
    }
  });
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < i; ++j) g[i][j] = g[j][i];
  return g;
}

// slerp: the whole tensor is one vector; lerp when |cos| > 0.9995.
class Slerp : public Combination {
 public:
  explicit Slerp(TensorMergeSpec spec) : Combination(std::move(spec)) {
    t_ = global_param(spec_, "t");
    other_ = non_base_inputs(spec_)[0];
  }
  void prepare() override {
    size_t base = static_cast<size_t>(spec_.base);
    auto g = gram(stream_, {base, other_}, -1);
    double n0 = std::sqrt(g[0][0]), n1 = std::sqrt(g[1][1]);
    double dot = g[0][1] / (n0 > 1e-8 ? n0 : 1.0) / (n1 > 1e-8 ? n1 : 1.0);
    coef_.assign(spec_.inputs.size(), 0.0f);
    if (std::fabs(dot) > 0.9995) {
      coef_[base] = static_cast<float>(1 - t_);
      coef_[other_] = static_cast<float>(t_);
      return;
    }
    double theta = std::acos(static_cast<float>(dot)), s = std::sin(theta);
    coef_[base] = static_cast<float>(std::sin(theta - theta * t_) / s);
    coef_[other_] = static_cast<float>(std::sin(theta * t_) / s);
  }

 private:
  double t_ = 0;
  size_t other_ = 0;
};

// multislerp: the weighted mean direction of the (task) vectors, scaled by Σ w_i ‖v_i‖. mergekit's
// tangent-space step is exactly zero (Σ w_i (u_i − (u_i·m̂) m̂) = M − ‖M‖ m̂ = 0), so the result is
// m̂ Σ w_i ‖v_i‖ up to float rounding.
class Multislerp : public Combination {
 public:
  explicit Multislerp(TensorMergeSpec spec) : Combination(std::move(spec)) {
    others_ = non_base_inputs(spec_);
    eps_ = global_param(spec_, "eps");
    double sum = 0;
    for (size_t i : others_) weights_.push_back(static_cast<float>(model_param(spec_, i, "weight")));
    for (float w : weights_) sum += w;
    if (global_param(spec_, "normalize_weights") != 0)
      for (float& w : weights_) w = static_cast<float>(w / static_cast<float>(sum));
  }
  void prepare() override {
    coef_.assign(spec_.inputs.size(), 0.0f);
    if (others_.size() == 1) {  // a single model is returned as it is (no base added)
      coef_[others_[0]] = 1.0f;
      return;
    }
    auto g = gram(stream_, others_, spec_.base);
    const size_t m = others_.size();
    std::vector<double> a(m);  // M = Σ a_i v_i with a_i = w_i / (‖v_i‖ + eps)
    double avg_norm = 0;
    for (size_t i = 0; i < m; ++i) {
      double norm = std::sqrt(g[i][i]);
      a[i] = weights_[i] / (norm + eps_);
      avg_norm += norm * weights_[i];
    }
    double mean_sq = 0;
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < m; ++j) mean_sq += a[i] * a[j] * g[i][j];
    double mean_norm = std::sqrt(std::max(mean_sq, 0.0));
    if (mean_norm < eps_) {
      if (m != 2)
        tensor_error(spec_, "multislerp: the weighted sum of the input tensors is zero (antipodal vectors whose weights balance out); "
                            "hint: use different weights");
      for (size_t i = 0; i < m; ++i) coef_[others_[i]] = weights_[i];
    } else {
      for (size_t i = 0; i < m; ++i) coef_[others_[i]] = static_cast<float>(a[i] / mean_norm * avg_norm);
    }
    delta_form_ = spec_.base >= 0;
  }

 private:
  std::vector<size_t> others_;
  std::vector<float> weights_;
  double eps_ = 1e-8;
};

}  // namespace

MergerPtr make_passthrough_input(TensorMergeSpec spec, size_t input, double scale) { return std::make_shared<Scaled>(std::move(spec), input, scale); }
MergerPtr make_linear(TensorMergeSpec spec) { return std::make_shared<Linear>(std::move(spec)); }
MergerPtr make_nearswap(TensorMergeSpec spec) { return std::make_shared<Nearswap>(std::move(spec)); }
MergerPtr make_slerp(TensorMergeSpec spec) { return std::make_shared<Slerp>(std::move(spec)); }
MergerPtr make_multislerp(TensorMergeSpec spec) { return std::make_shared<Multislerp>(std::move(spec)); }

}  // namespace moeforge
