// Generalized task arithmetic (mergekit generalized_task_arithmetic.py, sparsify.py): task
// vectors d_i = x_i − base, each sparsified with its own density (top-k magnitude, breadcrumbs'
// band, DARE's Bernoulli mask, DELLA's rank-dependent mask), optionally rescaled to its L1 norm,
// weighted, mixed with or without TIES sign election, normalised, scaled by lambda, added back.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "merge/merge_kernels.hpp"
#include "merge/rank_select.hpp"

namespace moeforge {
namespace {

struct TaskVector {
  size_t input = 0;
  float weight = 0;
  double density = 1, gamma = 0, epsilon = 0;
  bool sparsified = false;  // density < 1 (mergekit returns the vector unchanged at density >= 1)
  // magnitude: keep ranks [0, k) of (|d| descending, index); outliers: ranks [lo, hi] ascending.
  RankCut top, lower, upper;
  bool use_lower = false, keep_none = false;
  float rescale = 1.0f;
};

// DELLA's keep probabilities for one block: ranks of |d| along dimension 1 of the tensor viewed as
// [d0, d1, rest] (a vector is [1, n]), normalised to [0, 1], mapped to density ± epsilon.
void della_probabilities(const float* d, size_t n, int64_t d1, int64_t rest, const TaskVector& tv, float* p) {
  const float low = static_cast<float>(tv.density - tv.epsilon), eps = static_cast<float>(tv.epsilon);
  const float span = static_cast<float>(d1 - 1);
  std::vector<int64_t> order(static_cast<size_t>(d1));
  const int64_t slab = d1 * rest;
  for (size_t s0 = 0; s0 < n; s0 += static_cast<size_t>(slab))
    for (int64_t k = 0; k < rest; ++k) {
      const float* base = d + s0 + static_cast<size_t>(k);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return std::fabs(base[a * rest]) < std::fabs(base[b * rest]); });
      for (int64_t r = 0; r < d1; ++r) {
        float rank_norm = std::clamp(static_cast<float>(r) / span, 0.0f, 1.0f);
        p[s0 + static_cast<size_t>(order[static_cast<size_t>(r)] * rest + k)] = low + rank_norm * 2.0f * eps;
      }
    }
}

class GtaMerger : public StreamMerger {
 public:
  explicit GtaMerger(TensorMergeSpec spec) : StreamMerger(std::move(spec)) {
    const MergeMethodInfo& m = *spec_.method;
    normalize_ = global_param(spec_, "normalize") != 0;
    rescale_ = global_param(spec_, "rescale") != 0;
    lambda_ = global_param(spec_, "lambda");
    const int64_t n = stream_.numel();
    for (size_t i : non_base_inputs(spec_)) {
      TaskVector tv;
      tv.input = i;
      tv.weight = static_cast<float>(model_param(spec_, i, "weight"));
      tv.density = model_param(spec_, i, "density");
      if (!(tv.density > 0 && tv.density <= 1))
        tensor_error(spec_, spec_.labels[i] + ": density must be in (0, 1], found " + number_text(tv.density));
      tv.sparsified = m.sparsify != Sparsify::kNone && tv.density < 1;
      if (m.sparsify == Sparsify::kMagnitude && tv.sparsified && static_cast<int64_t>(tv.density * static_cast<double>(n)) == 0)
        tensor_error(spec_, spec_.labels[i] + ": density " + number_text(tv.density) + " keeps no element of " + std::to_string(n) +
                                " (mergekit: \"not gonna zero out the whole tensor\"); hint: raise density for small tensors with a filter");
      if (m.sparsify == Sparsify::kMagnitudeOutliers) {
        tv.gamma = model_param(spec_, i, "gamma");
        if (!(tv.gamma >= 0 && tv.gamma <= 1)) tensor_error(spec_, spec_.labels[i] + ": gamma must be in [0, 1], found " + number_text(tv.gamma));
      }
      if (m.sparsify == Sparsify::kDella) check_della(tv);
      tvs_.push_back(tv);
    }
    for (const auto& tv : tvs_) weight_sum_ += tv.weight;
  }

  void prepare() override {
    select_cuts();
    if (rescale_) compute_rescale();
  }

  void rows(int64_t r0, int64_t r1, float* out) const override {
    const size_t m = tvs_.size();
    stream_.for_each(r0, r1, [&](const Block& b) {
      float* o = out + (b.r0 - r0) * stream_.cols();
      const float* base = b.x[static_cast<size_t>(spec_.base)];
      if (m == 0) {
        std::copy(base, base + b.n, o);
        return;
      }
      auto& deltas = delta_buffers(m, b.n);
      for (size_t j = 0; j < m; ++j) {
        task_vector(b, j, deltas[j].data());
        sparsify(b, j, deltas[j].data());
      }
      mix(deltas, base, b.n, o);
    });
  }

 private:

  void check_della(TaskVector& t) {
    t.epsilon = model_param(spec_, t.input, "epsilon");
    if (!t.sparsified) return;
    if (t.density + t.epsilon >= 1 || t.density - t.epsilon <= 0)
      tensor_error(spec_, spec_.labels[t.input] + ": density ± epsilon must be in (0, 1), found density " + number_text(t.density) +
                              ", epsilon " + number_text(t.epsilon));
    int64_t d1 = spec_.shape.size() < 2 ? shape_numel(spec_.shape) : spec_.shape[1];
    if (d1 < 2) tensor_error(spec_, "della ranks magnitudes along dimension 1, which has fewer than 2 elements here");
  }

  static std::vector<std::vector<float>>& delta_buffers(size_t m, size_t n) {
    thread_local std::vector<std::vector<float>> buffers;
    if (buffers.size() < m) buffers.resize(m);
    for (size_t j = 0; j < m; ++j)
      if (buffers[j].size() < n) buffers[j].resize(n);
    return buffers;
  }

  void task_vector(const Block& b, size_t j, float* d) const {
    const float* x = b.x[tvs_[j].input];
    const float* base = b.x[static_cast<size_t>(spec_.base)];
    for (size_t e = 0; e < b.n; ++e) d[e] = x[e] - base[e];
  }

  // keep[e] for a ranked sparsifier: top-k by |d| (descending), or the breadcrumbs band (ascending).
  void keep_ranked(const TaskVector& t, const float* d, size_t n, int64_t flat0, float* keep) const {
    if (spec_.method->sparsify == Sparsify::kMagnitude) {
      const uint32_t ck = t.top.key;
      if (t.top.index == RankCut::kAnyIndex) {
        for (size_t e = 0; e < n; ++e) keep[e] = order_key(std::fabs(d[e])) >= ck ? 1.0f : 0.0f;
      } else {
        for (size_t e = 0; e < n; ++e) keep[e] = at_or_before(order_key(std::fabs(d[e])), flat0 + static_cast<int64_t>(e), t.top, true) ? 1.0f : 0.0f;
      }
      return;
    }
    for (size_t e = 0; e < n; ++e) {
      uint32_t key = order_key(std::fabs(d[e]));
      int64_t flat = flat0 + static_cast<int64_t>(e);
      bool in = !t.keep_none && !(t.use_lower && at_or_before(key, flat, t.lower, false)) && at_or_before(key, flat, t.upper, false);
      keep[e] = in ? 1.0f : 0.0f;
    }
  }

  // d ← d × mask (× the L1 rescale), as sparsify.py does; unchanged at density 1.
  void apply_mask(const Block& b, size_t j, float* d, bool with_rescale) const {
    const TaskVector& t = tvs_[j];
    if (!t.sparsified) return;
    const Sparsify kind = spec_.method->sparsify;
    thread_local std::vector<float> keep;
    if (keep.size() < b.n) keep.resize(b.n);
    if (kind == Sparsify::kMagnitude || kind == Sparsify::kMagnitudeOutliers) {
      keep_ranked(t, d, b.n, b.flat0, keep.data());
    } else {
      float* p = keep.data();  // probabilities first, then decisions in place
      if (kind == Sparsify::kDella) {
        int64_t d1 = spec_.shape.size() < 2 ? shape_numel(spec_.shape) : spec_.shape[1];
        int64_t rest = spec_.shape.size() < 3 ? 1 : shape_numel(spec_.shape) / (spec_.shape[0] * spec_.shape[1]);
        della_probabilities(d, b.n, d1, rest, t, p);
      } else {
        std::fill(p, p + b.n, static_cast<float>(t.density));
      }
      for (size_t e = 0; e < b.n; ++e) p[e] = spec_.masks->keep(t.input, b.flat0 + static_cast<int64_t>(e), p[e]) ? 1.0f : 0.0f;
    }
    for (size_t e = 0; e < b.n; ++e) d[e] = d[e] * keep[e];
    if (with_rescale && t.rescale != 1.0f)
      for (size_t e = 0; e < b.n; ++e) d[e] *= t.rescale;
  }

  void sparsify(const Block& b, size_t j, float* d) const { apply_mask(b, j, d, rescale_); }

  // The weighted delta counts where its sign equals the elected one (a zero delta never does): × 1
  // or × 0 as mergekit's mask multiply, branch-free and unaliased so that it vectorises.
  static void add_agreeing(const float* __restrict d, float w, const float* __restrict sign, float* __restrict mixed,
                           float* __restrict divisor, size_t n) {
    for (size_t e = 0; e < n; ++e) {
      float wd = d[e] * w;
      float hit = wd * sign[e] > 0 ? 1.0f : 0.0f;
      mixed[e] += wd * hit;
      divisor[e] += w * hit;
    }
  }

  // out = base + λ · (Σ_j w_j d_j) / divisor, mergekit's order of float operations. With sign
  // consensus only the deltas whose weighted sign matches the sign of the weighted sum count,
  // and the divisor is the sum of their weights (1 where none does).
  void mix(const std::vector<std::vector<float>>& d, const float* base, size_t n, float* o) const {
    thread_local std::vector<float> mixed, divisor, sign;
    if (mixed.size() < n) mixed.resize(n), divisor.resize(n), sign.resize(n);
    const size_t m = tvs_.size();
    float* mx = mixed.data();
    float* dv = divisor.data();
    if (spec_.method->sign_consensus) {
      float* sg = sign.data();
      for (size_t e = 0; e < n; ++e) sg[e] = d[0][e] * tvs_[0].weight;
      for (size_t j = 1; j < m; ++j) {
        const float* dj = d[j].data();
        const float w = tvs_[j].weight;
        for (size_t e = 0; e < n; ++e) sg[e] += dj[e] * w;
      }
      for (size_t e = 0; e < n; ++e) sg[e] = sg[e] >= 0 ? 1.0f : -1.0f;
      std::fill(mx, mx + n, 0.0f);
      std::fill(dv, dv + n, 0.0f);
      for (size_t j = 0; j < m; ++j) add_agreeing(d[j].data(), tvs_[j].weight, sg, mx, dv, n);
      for (size_t e = 0; e < n; ++e) dv[e] = dv[e] == 0 ? 1.0f : dv[e];
    } else {
      for (size_t e = 0; e < n; ++e) mx[e] = d[0][e] * tvs_[0].weight;
      for (size_t j = 1; j < m; ++j) {
        const float* dj = d[j].data();
        const float w = tvs_[j].weight;
        for (size_t e = 0; e < n; ++e) mx[e] += dj[e] * w;
      }
      std::fill(dv, dv + n, std::fabs(weight_sum_) < 1e-8f ? 1.0f : weight_sum_);
    }
    const float lambda = static_cast<float>(lambda_);
    for (size_t e = 0; e < n; ++e) {
      float v = normalize_ ? mx[e] / dv[e] : mx[e];
      if (lambda_ != 1) v *= lambda;
      o[e] = base[e] + v;
    }
  }

  // Top-k (ties) and the breadcrumbs band: one rank selection per task vector, all streamed together.
  void select_cuts() {
    const Sparsify kind = spec_.method->sparsify;
    if (kind != Sparsify::kMagnitude && kind != Sparsify::kMagnitudeOutliers) return;
    const int64_t n = stream_.numel();
    std::vector<std::unique_ptr<RankSelect>> sel(tvs_.size());
    for (size_t j = 0; j < tvs_.size(); ++j) {
      TaskVector& t = tvs_[j];
      if (!t.sparsified) continue;
      if (kind == Sparsify::kMagnitude) {
        sel[j] = std::make_unique<RankSelect>(n, std::vector<int64_t>{static_cast<int64_t>(t.density * static_cast<double>(n)) - 1}, true);
        continue;
      }
      int64_t keep = static_cast<int64_t>(t.density * static_cast<double>(n)), top = static_cast<int64_t>(t.gamma * static_cast<double>(n));
      int64_t bottom = n - keep - top;
      if (bottom < 0) top += bottom, bottom = 0;
      // Python's sorted[bottom:-top] is empty when top is 0 (mergekit's gamma edge): nothing is kept.
      t.keep_none = top == 0 || bottom >= n - top;
      if (t.keep_none) continue;
      t.use_lower = bottom > 0;
      std::vector<int64_t> ranks = {n - top - 1};
      if (t.use_lower) ranks.push_back(bottom - 1);
      sel[j] = std::make_unique<RankSelect>(n, ranks, false);
    }
    for (;;) {
      bool any = false;
      for (const auto& s : sel) any = any || (s && s->pass() >= 0);
      if (!any) break;
      stream_.for_all([&](const Block& b) {
        thread_local std::vector<float> mag;
        if (mag.size() < b.n) mag.resize(b.n);
        for (size_t j = 0; j < tvs_.size(); ++j) {
          if (!sel[j] || sel[j]->pass() < 0) continue;
          task_vector(b, j, mag.data());
          for (size_t e = 0; e < b.n; ++e) mag[e] = std::fabs(mag[e]);
          sel[j]->feed(mag.data(), b.n, b.flat0);
        }
      });
      for (auto& s : sel)
        if (s && s->pass() >= 0) s->end_pass();
    }
    for (size_t j = 0; j < tvs_.size(); ++j) {
      if (!sel[j]) continue;
      if (kind == Sparsify::kMagnitude) tvs_[j].top = sel[j]->cut(0);
      else {
        tvs_[j].upper = sel[j]->cut(0);
        if (tvs_[j].use_lower) tvs_[j].lower = sel[j]->cut(1);
      }
    }
  }

  // rescale: each sparsified task vector × (Σ|d| / Σ|d·mask|), unless either sum is below 1e-7.
  void compute_rescale() {
    std::vector<double> before(tvs_.size(), 0.0), after(tvs_.size(), 0.0);
    bool any = false;
    for (const auto& t : tvs_) any = any || t.sparsified;
    if (!any) return;
    stream_.for_all([&](const Block& b) {
      thread_local std::vector<float> d;
      if (d.size() < b.n) d.resize(b.n);
      for (size_t j = 0; j < tvs_.size(); ++j) {
        if (!tvs_[j].sparsified) continue;
        task_vector(b, j, d.data());
        for (size_t e = 0; e < b.n; ++e) before[j] += std::fabs(d[e]);
        apply_mask(b, j, d.data(), false);
        for (size_t e = 0; e < b.n; ++e) after[j] += std::fabs(d[e]);
      }
    });
    for (size_t j = 0; j < tvs_.size(); ++j)
      if (tvs_[j].sparsified && before[j] >= 1e-7 && after[j] >= 1e-7) tvs_[j].rescale = static_cast<float>(before[j] / after[j]);
  }

  std::vector<TaskVector> tvs_;
  bool normalize_ = false, rescale_ = false;
  double lambda_ = 1;
  float weight_sum_ = 0;
};

}  // namespace

MergerPtr make_gta(TensorMergeSpec spec) { return std::make_shared<GtaMerger>(std::move(spec)); }

}  // namespace moeforge
