#include "formats/checkpoint_diff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "core/parallel.hpp"
#include "core/strings.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
using ojson = nlohmann::ordered_json;

namespace {

struct Difference {
  double max_abs = 0;
  double diff_sq = 0;
  double ref_sq = 0;
  void merge(const Difference& o) {
    max_abs = std::max(max_abs, o.max_abs);
    diff_sq += o.diff_sq;
    ref_sq += o.ref_sq;
  }
};

Difference compare_rows(const TensorInfo& a, const TensorInfo& b, int64_t r0, int64_t r1) {
  size_t n = static_cast<size_t>((r1 - r0) * a.cols());
  float* va = thread_scratch(n, 0);
  float* vb = thread_scratch(n, 1);
  read_rows_f32(a, r0, r1, va);
  read_rows_f32(b, r0, r1, vb);
  Difference d;
  for (size_t i = 0; i < n; ++i) {
    double x = va[i], y = vb[i];
    if (std::isnan(x) && std::isnan(y)) continue;
    double diff = (x == y) ? 0.0 : std::fabs(x - y);  // equal infinities differ by 0, not NaN
    if (std::isnan(diff)) diff = std::numeric_limits<double>::infinity();
    d.max_abs = std::max(d.max_abs, diff);
    d.diff_sq += diff * diff;
    if (std::isfinite(y)) d.ref_sq += y * y;
  }
  return d;
}

ojson config_differences(const Checkpoint& a, const Checkpoint& b) {
  ojson out = ojson::array();
  if (!a.has_config() || !b.has_config()) return out;
  std::set<std::string> keys;
  for (const auto& [k, v] : a.config().items()) keys.insert(k);
  for (const auto& [k, v] : b.config().items()) keys.insert(k);
  for (const auto& k : keys) {
    auto va = a.config().contains(k) ? a.config()[k] : nlohmann::json("(absent)");
    auto vb = b.config().contains(k) ? b.config()[k] : nlohmann::json("(absent)");
    if (va != vb) out.push_back({{"key", k}, {"a", va}, {"b", vb}});
  }
  return out;
}

}  // namespace

ojson diff_checkpoints(const Checkpoint& a, const Checkpoint& b, const DiffOptions& o) {
  ojson r;
  ojson only_a = ojson::array(), only_b = ojson::array();
  std::vector<std::pair<const TensorInfo*, const TensorInfo*>> common;
  for (const TensorInfo* t : a.tensors()) {
    const TensorInfo* u = b.find_tensor(t->name);
    if (u == nullptr) only_a.push_back(t->name);
    else common.emplace_back(t, u);
  }
  for (const TensorInfo* t : b.tensors())
    if (a.find_tensor(t->name) == nullptr) only_b.push_back(t->name);

  struct Chunk {
    size_t pair;
    int64_t r0, r1;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < common.size(); ++i) {
    const auto& [t, u] = common[i];
    if (t->shape != u->shape) continue;
    int64_t step = std::max<int64_t>(1, (1 << 22) / std::max<int64_t>(t->cols(), 1));
    for (int64_t row = 0; row < t->rows(); row += step) chunks.push_back({i, row, std::min(t->rows(), row + step)});
  }
  std::vector<Difference> partial(chunks.size());
  parallel_for(chunks.size(), resolve_threads(o.threads), [&](size_t c, int) {
    partial[c] = compare_rows(*common[chunks[c].pair].first, *common[chunks[c].pair].second, chunks[c].r0, chunks[c].r1);
  });
  std::vector<Difference> per(common.size());
  for (size_t c = 0; c < chunks.size(); ++c) per[chunks[c].pair].merge(partial[c]);

  ojson tensors = ojson::array();
  size_t differing = 0;
  double worst = 0;
  for (size_t i = 0; i < common.size(); ++i) {
    const auto& [t, u] = common[i];
    ojson e = {{"name", t->name}, {"dtype_a", dtype_name(t->dtype)}, {"dtype_b", dtype_name(u->dtype)}};
    bool equal = t->dtype == u->dtype;
    if (t->shape != u->shape) {
      e["shape_a"] = t->shape;
      e["shape_b"] = u->shape;
      equal = false;
    } else {
      e["shape"] = t->shape;
      e["max_abs"] = per[i].max_abs;
      e["rel_l2"] = per[i].ref_sq > 0 ? std::sqrt(per[i].diff_sq / per[i].ref_sq) : (per[i].diff_sq > 0 ? INFINITY : 0.0);
      equal = equal && per[i].max_abs <= o.atol;
      worst = std::max(worst, per[i].max_abs);
    }
    e["equal"] = equal;
    if (!equal) ++differing;
    tensors.push_back(std::move(e));
  }
  ojson cfg = config_differences(a, b);
  bool equal = only_a.empty() && only_b.empty() && differing == 0;
  r["a"] = a.label();
  r["b"] = b.label();
  r["atol"] = o.atol;
  r["equal"] = equal;
  r["summary"] = {{"common", common.size()}, {"differing", differing}, {"only_in_a", only_a.size()},
                  {"only_in_b", only_b.size()}, {"max_abs", worst}, {"config_differences", cfg.size()}};
  r["only_in_a"] = only_a;
  r["only_in_b"] = only_b;
  r["config_differences"] = cfg;
  r["tensors"] = tensors;
  return r;
}

}  // namespace moeforge
