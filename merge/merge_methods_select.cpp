// Methods that select by statistics of the whole tensor: model_stock (mergekit model_stock.py: the
// mean cosine of the task vectors sets how far the models' mean moves from the base), arcee_fusion
// (arcee_fusion.py: importance above median + 1.5 IQR) and sce (sce.py: top-k by variance across
// the models, weights by mean square, minority signs erased).
#include <cmath>

#include "merge/merge_kernels.hpp"
#include "merge/rank_select.hpp"

namespace moeforge {
namespace {

// model_stock's ratio t from the task vectors' Gram matrix: mean pairwise cosine c, t = N c / (1 + (N − 1) c).
double stock_ratio(const std::vector<std::vector<double>>& g) {
  const size_t n = g.size();
  double sum = 0;
  int pairs = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) {
      double denom = std::max(std::sqrt(g[i][i]) * std::sqrt(g[j][j]), 1e-6);
      sum += std::clamp(g[i][j] / denom, -1.0, 1.0);
      ++pairs;
    }
  double cos = static_cast<float>(sum / pairs);
  double m = static_cast<double>(n);
  return m * cos / (1 + (m - 1) * cos);
}

class ModelStock : public StreamMerger {
 public:
  explicit ModelStock(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    others_ = non_base_inputs(spec_);
    filter_wise_ = global_param(spec_, "filter_wise") != 0;
    vector_ = spec_.shape.empty() ? 1 : spec_.shape.back();
  }
  void prepare() override {
    if (filter_wise_) return;
    std::vector<std::vector<double>> g(others_.size(), std::vector<double>(others_.size(), 0.0));
    stream_.for_all([&](const Block& b) { accumulate(b, 0, b.n, g); });
    t_ = static_cast<float>(stock_ratio(g));
  }
  void rows(int64_t r0, int64_t r1, float* out) const override {
    const float count = static_cast<float>(others_.size());
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* w0 = b.x[static_cast<size_t>(spec_.base)];
      const size_t step = filter_wise_ ? static_cast<size_t>(vector_) : b.n;
      for (size_t v = 0; v < b.n; v += step) {
        float t = t_;
        if (filter_wise_) {
          std::vector<std::vector<double>> g(others_.size(), std::vector<double>(others_.size(), 0.0));
          accumulate(b, v, v + step, g);
          t = static_cast<float>(stock_ratio(g));
        }
        for (size_t e = v; e < v + step; ++e) {
          float sum = 0;
          for (size_t i : others_) sum += b.x[i][e];
          o[e] = t * (sum / count) + (1 - t) * w0[e];
        }
      }
    });
  }

 private:
  void accumulate(const Block& b, size_t from, size_t to, std::vector<std::vector<double>>& g) const {
    const float* w0 = b.x[static_cast<size_t>(spec_.base)];
    for (size_t e = from; e < to; ++e)
      for (size_t i = 0; i < others_.size(); ++i) {
        double oi = b.x[others_[i]][e] - w0[e];
        for (size_t j = i; j < others_.size(); ++j) {
          double v = oi * static_cast<double>(b.x[others_[j]][e] - w0[e]);
          g[i][j] += v;
          if (j != i) g[j][i] += v;
        }
      }
  }
  std::vector<size_t> others_;
  bool filter_wise_ = false;
  int64_t vector_ = 1;
  float t_ = 0;
};

class ArceeFusion : public StreamMerger {
 public:
  explicit ArceeFusion(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    other_ = non_base_inputs(spec_)[0];
    vector_ = spec_.shape.empty() ? 1 : spec_.shape.back();
  }
  // Quantiles over every element (mergekit samples 10^6 elements of larger tensors at random).
  void prepare() override {
    const int64_t n = stream_.numel();
    const float qs[3] = {0.5f, 0.25f, 0.75f};
    std::vector<int64_t> ranks;
    for (float q : qs) ranks.push_back(static_cast<int64_t>(q * static_cast<float>(n - 1)));
    RankSelect sel(n, ranks, false);
    while (sel.pass() >= 0) {
      stream_.for_all([&](const Block& b) {
        thread_local std::vector<float> imp;
        importance(b, imp);
        sel.feed(imp.data(), b.n, b.flat0);
      });
      sel.end_pass();
    }
    float median = sel.cut(0).value(), q1 = sel.cut(1).value(), q3 = sel.cut(2).value();
    threshold_ = median + 1.5f * (q3 - q1);
  }
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      thread_local std::vector<float> imp;
      importance(b, imp);
      const float* a = b.x[static_cast<size_t>(spec_.base)];
      const float* x = b.x[other_];
      for (size_t e = 0; e < b.n; ++e) o[e] = a[e] + (x[e] - a[e]) * (imp[e] >= threshold_ ? 1.0f : 0.0f);
    });
  }

 private:
  // |b − a| × KL(softmax(b) ‖ softmax(a)) of the element's last-axis row.
  void importance(const Block& b, std::vector<float>& imp) const {
    if (imp.size() < b.n) imp.resize(b.n);
    const float* a = b.x[static_cast<size_t>(spec_.base)];
    const float* x = b.x[other_];
    const size_t len = static_cast<size_t>(vector_);
    std::vector<float> p(len), q(len);
    for (size_t v = 0; v < b.n; v += len) {
      softmax(x + v, len, p.data());
      softmax(a + v, len, q.data());
      double kl = 0;
      for (size_t e = 0; e < len; ++e) kl += p[e] * std::log(p[e] / q[e]);
      for (size_t e = 0; e < len; ++e) imp[v + e] = std::fabs(x[v + e] - a[v + e]) * static_cast<float>(kl);
    }
  }
  static void softmax(const float* x, size_t n, float* out) {
    float max = x[0];
    for (size_t i = 1; i < n; ++i) max = std::max(max, x[i]);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += out[i] = std::exp(x[i] - max);
    for (size_t i = 0; i < n; ++i) out[i] = out[i] / static_cast<float>(sum) + 1e-8f;
  }
  size_t other_ = 0;
  int64_t vector_ = 1;
  float threshold_ = 0;
};

class Sce : public StreamMerger {
 public:
  explicit Sce(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    others_ = non_base_inputs(spec_);
    topk_ = global_param(spec_, "select_topk");
  }
  void prepare() override {
    if (others_.empty()) return;
    if (topk_ < 1) select();
    std::vector<double> sq(others_.size(), 0.0);
    stream_.for_all([&](const Block& b) {
      thread_local std::vector<float> tv;
      for (size_t j = 0; j < others_.size(); ++j) {
        masked_task_vector(b, j, tv);
        for (size_t e = 0; e < b.n; ++e) sq[j] += static_cast<double>(tv[e]) * tv[e];
      }
    });
    float sum = 0;
    for (double s : sq) sum += static_cast<float>(s / static_cast<double>(stream_.numel()));
    for (double s : sq)
      weights_.push_back(std::fabs(sum) < 1e-6f ? 1.0f / static_cast<float>(others_.size()) : static_cast<float>(s / static_cast<double>(stream_.numel())) / sum);
  }
  void rows(int64_t r0, int64_t r1, float* out) const override {
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* base = b.x[static_cast<size_t>(spec_.base)];
      if (others_.empty()) {
        std::copy(base, base + b.n, o);
        return;
      }
      thread_local std::vector<std::vector<float>> tvs;
      if (tvs.size() < others_.size()) tvs.resize(others_.size());
      for (size_t j = 0; j < others_.size(); ++j) masked_task_vector(b, j, tvs[j]);
      for (size_t e = 0; e < b.n; ++e) {
        float sum = 0;
        for (size_t j = 0; j < others_.size(); ++j) sum += tvs[j][e];
        const float elected = sum >= 0 ? 1.0f : -1.0f;
        float merged = 0, total = 0;
        for (size_t j = 0; j < others_.size(); ++j) {
          float v = tvs[j][e], sign = v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f;
          float w = sign == elected ? weights_[j] : 0.0f;
          merged += v * w;
          total += w;
        }
        o[e] = base[e] + merged / std::max(total, 1e-6f);
      }
    });
  }

 private:
  void masked_task_vector(const Block& b, size_t j, std::vector<float>& tv) const {
    if (tv.size() < b.n) tv.resize(b.n);
    const float* base = b.x[static_cast<size_t>(spec_.base)];
    const float* x = b.x[others_[j]];
    for (size_t e = 0; e < b.n; ++e) tv[e] = x[e] - base[e];
    if (topk_ >= 1) return;
    if (keep_none_) return std::fill(tv.begin(), tv.begin() + static_cast<std::ptrdiff_t>(b.n), 0.0f);
    thread_local std::vector<float> var;
    variance(b, var);
    for (size_t e = 0; e < b.n; ++e)
      if (!at_or_before(order_key(std::fabs(var[e])), b.flat0 + static_cast<int64_t>(e), cut_, true)) tv[e] = 0;
  }
  // Population variance of the task vectors across the models, per element.
  void variance(const Block& b, std::vector<float>& var) const {
    if (var.size() < b.n) var.resize(b.n);
    const float* base = b.x[static_cast<size_t>(spec_.base)];
    const double m = static_cast<double>(others_.size());
    for (size_t e = 0; e < b.n; ++e) {
      double mean = 0, sq = 0;
      for (size_t i : others_) mean += static_cast<double>(b.x[i][e] - base[e]);
      mean /= m;
      for (size_t i : others_) sq += (b.x[i][e] - base[e] - mean) * (b.x[i][e] - base[e] - mean);
      var[e] = static_cast<float>(sq / m);
    }
  }
  // Top-k of |variance| with k = count of nonzero variances × select_topk.
  void select() {
    const int64_t n = stream_.numel();
    RankSelect sel(n, {}, true);
    int64_t nonzero = 0;
    while (sel.pass() >= 0) {
      const bool first = sel.pass() == 0;
      stream_.for_all([&](const Block& b) {
        thread_local std::vector<float> var;
        variance(b, var);
        for (size_t e = 0; e < b.n && first; ++e) nonzero += var[e] != 0;
        for (size_t e = 0; e < b.n; ++e) var[e] = std::fabs(var[e]);
        sel.feed(var.data(), b.n, b.flat0);
      });
      if (first) {
        int64_t k = topk_ <= 0 ? 0 : static_cast<int64_t>(static_cast<float>(nonzero) * static_cast<float>(topk_));
        keep_none_ = k == 0;
        sel.set_ranks(keep_none_ ? std::vector<int64_t>{} : std::vector<int64_t>{k - 1});
      }
      sel.end_pass();
    }
    if (!keep_none_) cut_ = sel.cut(0);
  }
  std::vector<size_t> others_;
  double topk_ = 1;
  bool keep_none_ = false;
  RankCut cut_;
  std::vector<float> weights_;
};

}  // namespace

MergerPtr make_model_stock(TensorMergeSpec spec) { return std::make_shared<ModelStock>(std::move(spec)); }
MergerPtr make_arcee_fusion(TensorMergeSpec spec) { return std::make_shared<ArceeFusion>(std::move(spec)); }
MergerPtr make_sce(TensorMergeSpec spec) { return std::make_shared<Sce>(std::move(spec)); }

}  // namespace moeforge
