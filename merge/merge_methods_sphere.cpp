// nuslerp (mergekit nuslerp.py) and karcher (karcher.py). nuslerp interpolates two models (or
// their task vectors) on the sphere per vector: the whole tensor, each last-axis row, or each
// axis-0 column. karcher's iteration only ever forms linear combinations of the unit inputs, so it
// runs on their Gram matrix (one streamed pass) and the output is one combination of the inputs.
#include <cmath>

#include "merge/merge_kernels.hpp"

namespace moeforge {
namespace {

struct PairStats {
  double n0 = 0, n1 = 0, dot = 0;  // Σ v0², Σ v1², Σ v0 v1
};

// Coefficients of v0 and v1 in nuslerp's result for one vector.
std::pair<float, float> nuslerp_coefficients(const PairStats& s, double t) {
  double n0 = std::max(std::sqrt(s.n0), 1e-7), n1 = std::max(std::sqrt(s.n1), 1e-7);
  double cos = std::clamp(s.dot / (n0 * n1), -1.0, 1.0);
  double theta = std::acos(cos), sin = std::sin(theta);
  if (std::fabs(sin) < 1e-8) return {static_cast<float>(1 - t), static_cast<float>(t)};
  return {static_cast<float>(std::sin((1 - t) * theta) / sin), static_cast<float>(std::sin(t * theta) / sin)};
}

class Nuslerp : public StreamMerger {
 public:
  explicit Nuslerp(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    auto others = non_base_inputs(spec_);
    a_ = others[0];
    b_ = others[1];
    double w0 = model_param(spec_, a_, "weight"), w1 = model_param(spec_, b_, "weight");
    t_ = std::fabs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
    bool flatten = global_param(spec_, "nuslerp_flatten") != 0, row_wise = global_param(spec_, "nuslerp_row_wise") != 0;
    mode_ = flatten || spec_.shape.size() < 2 ? kWhole : row_wise ? kColumns : kRows;
    vector_ = spec_.shape.empty() ? 1 : spec_.shape.back();
  }

  void prepare() override {
    if (mode_ == kRows) return;
    size_t n = mode_ == kWhole ? 1 : static_cast<size_t>(stream_.cols());
    std::vector<PairStats> stats(n);
    stream_.for_all([&](const Block& b) {
      for (size_t e = 0; e < b.n; ++e) {
        auto [v0, v1] = pair(b, e);
        PairStats& s = stats[mode_ == kWhole ? 0 : e % n];
        s.n0 += static_cast<double>(v0) * v0;
        s.n1 += static_cast<double>(v1) * v1;
        s.dot += static_cast<double>(v0) * v1;
      }
    });
    for (const auto& s : stats) coef_.push_back(nuslerp_coefficients(s, t_));
  }

  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const size_t cols = static_cast<size_t>(stream_.cols());
      std::vector<std::pair<float, float>> row_coef;
      if (mode_ == kRows) {
        for (size_t v0 = 0; v0 < b.n; v0 += static_cast<size_t>(vector_)) {
          PairStats s;
          for (size_t e = v0; e < v0 + static_cast<size_t>(vector_); ++e) {
            auto [x0, x1] = pair(b, e);
            s.n0 += static_cast<double>(x0) * x0;
            s.n1 += static_cast<double>(x1) * x1;
            s.dot += static_cast<double>(x0) * x1;
          }
          row_coef.push_back(nuslerp_coefficients(s, t_));
        }
      }
      for (size_t e = 0; e < b.n; ++e) {
        const auto& c = mode_ == kWhole ? coef_[0] : mode_ == kColumns ? coef_[e % cols] : row_coef[e / static_cast<size_t>(vector_)];
        auto [v0, v1] = pair(b, e);
        float r = c.first * v0 + c.second * v1;
        o[e] = spec_.base >= 0 ? b.x[static_cast<size_t>(spec_.base)][e] + r : r;
      }
    });
  }

 private:
  enum Mode { kWhole, kRows, kColumns };
  std::pair<float, float> pair(const Block& b, size_t e) const {
    if (spec_.base < 0) return {b.x[a_][e], b.x[b_][e]};
    float base = b.x[static_cast<size_t>(spec_.base)][e];
    return {b.x[a_][e] - base, b.x[b_][e] - base};
  }
  size_t a_ = 0, b_ = 1;
  double t_ = 0.5;
  Mode mode_ = kWhole;
  int64_t vector_ = 1;
  std::vector<std::pair<float, float>> coef_;
};

double quad(const std::vector<double>& a, const std::vector<std::vector<double>>& g, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j) s += a[i] * g[i][j] * b[j];
  return s;
}

// karcher: every input (base_model included) with weight 1/n; u and the tangent T are kept as
// coefficient vectors over the unit inputs u_i, their dot products taken through the unit Gram matrix.
class Karcher : public StreamMerger {
 public:
  explicit Karcher(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    double iters = global_param(spec_, "max_iter");
    if (iters < 0 || iters != std::floor(iters)) tensor_error(spec_, "karcher max_iter must be a whole number >= 0");
    max_iter_ = static_cast<int>(iters);
    tol_ = global_param(spec_, "tol");
  }

  void prepare() override {
    const size_t n = spec_.inputs.size();
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    std::vector<std::vector<double>> g(n, std::vector<double>(n, 0.0));
    stream_.for_all([&](const Block& b) {
      for (size_t e = 0; e < b.n; ++e)
        for (size_t i = 0; i < n; ++i)
          for (size_t j = i; j < n; ++j) g[i][j] += static_cast<double>(b.x[i][e]) * b.x[j][e];
    });
    std::vector<double> norm(n);
    for (size_t i = 0; i < n; ++i) norm[i] = std::sqrt(g[i][i]);
    std::vector<size_t> valid;
    for (size_t i = 0; i < n; ++i)
      if (norm[i] > tol_) valid.push_back(i);
    coef_.assign(n, 0.0);
    if (valid.empty()) return;  // zeros
    const size_t m = valid.size();
    std::vector<std::vector<double>> unit(m, std::vector<double>(m));
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < m; ++j) {
        size_t a = std::min(valid[i], valid[j]), c = std::max(valid[i], valid[j]);
        unit[i][j] = g[a][c] / (norm[valid[i]] * norm[valid[j]]);
      }
    std::vector<double> u = iterate(unit);
    double scale = 0;
    for (size_t i = 0; i < n; ++i) scale += norm[i] / static_cast<double>(n);
    for (size_t i = 0; i < m; ++i) coef_[valid[i]] = scale * u[i] / norm[valid[i]];
  }

  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      for (size_t e = 0; e < b.n; ++e) {
        double acc = 0;
        for (size_t i = 0; i < coef_.size(); ++i) acc += coef_[i] * b.x[i][e];
        o[e] = static_cast<float>(acc);
      }
    });
  }

 private:
  // The Karcher mean direction as coefficients over the valid unit vectors (equal weights).
  std::vector<double> iterate(const std::vector<std::vector<double>>& unit) const {
    const size_t m = unit.size();
    const double alpha = 1.0 / static_cast<double>(m);
    std::vector<double> u(m, alpha);
    double norm_u = std::sqrt(std::max(quad(u, unit, u), 0.0));
    if (norm_u < tol_) {
      u.assign(m, 0.0);
      u[0] = 1.0;
    } else {
      for (double& c : u) c /= norm_u;
    }
    for (int it = 0; it < max_iter_; ++it) {
      std::vector<double> tangent(m, 0.0);
      double along = 0;  // Σ β_i cos_i: the part of T along u
      for (size_t i = 0; i < m; ++i) {
        double dot = 0;
        for (size_t j = 0; j < m; ++j) dot += u[j] * unit[j][i];
        dot = std::clamp(dot, -1.0, 1.0);
        double theta = std::acos(dot);
        if (theta < tol_) continue;
        double beta = alpha * theta / std::sin(theta);
        tangent[i] += beta;
        along += beta * dot;
      }
      for (size_t i = 0; i < m; ++i) tangent[i] -= along * u[i];
      double norm_t = std::sqrt(std::max(quad(tangent, unit, tangent), 0.0));
      if (norm_t < tol_) break;
      for (size_t i = 0; i < m; ++i) u[i] = std::cos(norm_t) * u[i] + std::sin(norm_t) * tangent[i] / norm_t;
      double nu = std::sqrt(std::max(quad(u, unit, u), 0.0));
      if (nu > tol_)
        for (double& c : u) c /= nu;
    }
    return u;
  }

  int max_iter_ = 10;
  double tol_ = 1e-5;
  std::vector<double> coef_;
};

}  // namespace

MergerPtr make_nuslerp(TensorMergeSpec spec) { return std::make_shared<Nuslerp>(std::move(spec)); }
MergerPtr make_karcher(TensorMergeSpec spec) { return std::make_shared<Karcher>(std::move(spec)); }

}  // namespace moeforge
