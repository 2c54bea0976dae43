// Dense merge methods beyond the reference cases: the streamed rank selection against a full
// stable sort (with ties, both orders), top-k pruning of large tensors against a brute-force
// TIES, moeforge's seeded DARE/DELLA checked statistically (kept fraction, L1 preserved by the
// rescale, the mean over seeds tending to task arithmetic, rank-dependent DELLA keep rates),
// identities (linear of one model, task arithmetic with weight 0), and results that do not depend
// on how rows are chunked.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.hpp"
#include "merge/merge_registry.hpp"
#include "merge/rank_select.hpp"
#include "merge/tensor_merge.hpp"

using namespace moeforge;

namespace {

using Data = std::shared_ptr<const std::vector<float>>;

RowReader memory(Data d, int64_t cols) {
  return [d, cols](int64_t r0, int64_t r1, float* dst) { std::copy(d->begin() + r0 * cols, d->begin() + r1 * cols, dst); };
}

Data noise_data(size_t n, uint32_t seed, float scale, float offset = 0, int quantize = 0) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  auto v = std::make_shared<std::vector<float>>(n);
  for (auto& x : *v) {
    x = u(g) * scale;
    if (quantize) x = std::round(x * static_cast<float>(quantize)) / static_cast<float>(quantize);
    x += offset;
  }
  return v;
}

TensorMergeSpec spec(const std::string& method, Shape shape, std::vector<Data> inputs, int base) {
  TensorMergeSpec s;
  s.method = find_merge_method(method);
  s.name = "model.layers.0.mlp.down_proj.weight";
  s.shape = shape;
  int64_t cols = shape.size() < 2 ? shape_numel(shape) : shape_numel(shape) / shape[0];
  for (auto& d : inputs) s.inputs.push_back(memory(d, cols));
  s.labels.assign(inputs.size(), "m");
  s.base = base;
  s.per_model.resize(inputs.size());
  for (const auto& p : s.method->params)
    if (p.default_value) {
      if (p.per_model)
        for (auto& m : s.per_model) m[p.name] = *p.default_value;
      else
        s.global[p.name] = *p.default_value;
    }
  return s;
}

std::vector<float> run(TensorMergeSpec s) {
  Shape shape = s.shape;
  auto m = make_tensor_merger(std::move(s));
  return merge_all(*m, shape);
}

}  // namespace

TEST_CASE("rank selection equals a stable sort, with ties, in both orders") {
  for (int quantize : {0, 7})
  for (uint64_t keep_limit : {uint64_t{1} << 20, uint64_t{0}}) {  // the wanted occurrence from kept elements, or by a third pass
    Data d = noise_data(200000, 3 + quantize, 1.0f, 0.0f, quantize);
    std::vector<int64_t> order(d->size());
    std::iota(order.begin(), order.end(), 0);
    for (bool desc : {false, true}) {
      CAPTURE(quantize);
      CAPTURE(desc);
      CAPTURE(keep_limit);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return desc ? (*d)[static_cast<size_t>(a)] > (*d)[static_cast<size_t>(b)] : (*d)[static_cast<size_t>(a)] < (*d)[static_cast<size_t>(b)];
      });
      std::vector<int64_t> ranks = {0, 1, 777, 100000, 199998, 199999};
      RankSelect sel(static_cast<int64_t>(d->size()), ranks, desc, keep_limit);
      while (sel.pass() >= 0) {
        for (size_t at = 0; at < d->size(); at += 4093) sel.feed(d->data() + at, std::min<size_t>(4093, d->size() - at), static_cast<int64_t>(at));
        sel.end_pass();
      }
      for (size_t i = 0; i < ranks.size(); ++i) {
        int64_t want = order[static_cast<size_t>(ranks[i])];
        const RankCut& c = sel.cut(i);
        CHECK(c.value() == (*d)[static_cast<size_t>(want)]);
        // Elements at or before the cut are exactly the first rank + 1 of the sorted order.
        int64_t count = 0;
        for (size_t e = 0; e < d->size(); ++e) count += at_or_before(order_key((*d)[e]), static_cast<int64_t>(e), c, desc);
        CHECK(count == ranks[i] + 1);
      }
    }
  }
}

TEST_CASE("ties on a large tensor with many equal magnitudes equals a brute-force TIES") {
  const int64_t rows = 300, cols = 1000;  // several row blocks
  Data base = noise_data(rows * cols, 1, 1.0f);
  std::vector<Data> models = {base};
  for (uint32_t s : {2u, 3u}) {
    auto x = std::make_shared<std::vector<float>>(*base);
    Data delta = noise_data(x->size(), s, 0.01f, 0.0f, 300);  // quantised: many exact ties
    for (size_t i = 0; i < x->size(); ++i) (*x)[i] += (*delta)[i];
    models.push_back(x);
  }
  auto s = spec("ties", {rows, cols}, models, 0);
  s.per_model[1]["weight"] = 1.0;
  s.per_model[2]["weight"] = 0.5;
  s.per_model[1]["density"] = 0.3;
  s.per_model[2]["density"] = 0.55;
  std::vector<float> got = run(s);
  // Reference: float32 deltas, stable descending sort of |d| (lower index first), keep k.
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<std::vector<float>> kept(2, std::vector<float>(n, 0.0f));
  double density[2] = {0.3, 0.55};
  float weight[2] = {1.0f, 0.5f};
  for (int m = 0; m < 2; ++m) {
    std::vector<float> d(n);
    for (size_t i = 0; i < n; ++i) d[i] = (*models[static_cast<size_t>(m + 1)])[i] - (*base)[i];
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::fabs(d[a]) > std::fabs(d[b]); });
    for (size_t r = 0; r < static_cast<size_t>(density[m] * static_cast<double>(n)); ++r) kept[static_cast<size_t>(m)][idx[r]] = d[idx[r]];
  }
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) {
    float wd0 = kept[0][i] * weight[0], wd1 = kept[1][i] * weight[1];
    float sum = wd0 + wd1, elected = sum >= 0 ? 1.0f : -1.0f, mixed = 0, div = 0;
    for (auto [wd, w] : {std::pair{wd0, weight[0]}, std::pair{wd1, weight[1]}})
      if ((wd > 0 ? 1.0f : wd < 0 ? -1.0f : 0.0f) == elected) mixed += wd, div += w;
    float want = (*base)[i] + mixed / (div == 0 ? 1.0f : div);
    differ += got[i] != want;
  }
  CHECK(differ == 0);
}

TEST_CASE("seeded DARE: kept fraction, exact L1 rescale, mean over seeds tends to task arithmetic") {
  const int64_t rows = 64, cols = 2048;
  const size_t n = static_cast<size_t>(rows * cols);
  Data base = noise_data(n, 11, 1.0f);
  auto x = std::make_shared<std::vector<float>>(*base);
  Data delta = noise_data(n, 12, 0.01f);
  for (size_t i = 0; i < n; ++i) (*x)[i] += (*delta)[i];
  const double p = 0.3;
  auto dare = [&](uint64_t seed, bool rescale) {
    auto s = spec("dare_linear", {rows, cols}, {base, x}, 0);
    s.per_model[1]["weight"] = 1.0;
    s.per_model[1]["density"] = p;
    s.global["rescale"] = rescale ? 1.0 : 0.0;
    s.masks = seeded_masks(seed, s.name);
    return run(s);
  };
  // Kept fraction within 5 binomial standard deviations; the L1 norm of the kept task vector equals the original's.
  std::vector<float> plain = dare(1, false), scaled = dare(1, true);
  size_t kept = 0;
  double l1_before = 0, l1_after = 0;
  for (size_t i = 0; i < n; ++i) {
    float d = (*x)[i] - (*base)[i];
    kept += plain[i] != (*base)[i];
    l1_before += std::fabs(d);
    l1_after += std::fabs(static_cast<double>(scaled[i]) - (*base)[i]);
  }
  double sigma = std::sqrt(static_cast<double>(n) * p * (1 - p));
  CHECK(std::fabs(static_cast<double>(kept) - p * static_cast<double>(n)) < 5 * sigma);
  CHECK(l1_after == doctest::Approx(l1_before).epsilon(1e-4));  // output rounding of base + d only
  CHECK(dare(1, true) == scaled);                                // same seed: identical
  CHECK(dare(2, true) != scaled);
  // The mean over seeds approaches base + d: relative error ≈ sqrt((1 − p) / (p S)).
  const int seeds = 200;
  std::vector<double> mean(n, 0.0);
  for (int s = 0; s < seeds; ++s) {
    auto out = dare(100 + static_cast<uint64_t>(s), true);
    for (size_t i = 0; i < n; ++i) mean[i] += (static_cast<double>(out[i]) - (*base)[i]) / seeds;
  }
  double err = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = static_cast<double>((*x)[i]) - (*base)[i];
    err += (mean[i] - d) * (mean[i] - d);
    norm += d * d;
  }
  double expected = std::sqrt((1 - p) / (p * seeds));
  CHECK(std::sqrt(err / norm) == doctest::Approx(expected).epsilon(0.1));
}

TEST_CASE("seeded DELLA: keep probability rises with magnitude rank, mean keep rate is the density") {
  const int64_t rows = 256, cols = 512;
  const size_t n = static_cast<size_t>(rows * cols);
  Data base = noise_data(n, 21, 1.0f);
  auto x = std::make_shared<std::vector<float>>(*base);
  Data delta = noise_data(n, 22, 0.01f);
  for (size_t i = 0; i < n; ++i) (*x)[i] += (*delta)[i];
  auto s = spec("della_linear", {rows, cols}, {base, x}, 0);
  s.per_model[1]["weight"] = 1.0;
  s.per_model[1]["density"] = 0.5;
  s.per_model[1]["epsilon"] = 0.3;
  s.global["rescale"] = 0.0;
  s.masks = seeded_masks(5, s.name);
  auto out = run(s);
  // Per row, the quarter of smallest magnitudes keeps ~0.2 + 0.3 × (1/4) ≈ 0.275, the largest quarter ~0.725.
  double kept_low = 0, kept_high = 0, kept = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<size_t> idx(static_cast<size_t>(cols));
    std::iota(idx.begin(), idx.end(), static_cast<size_t>(r * cols));
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return std::fabs((*delta)[a]) < std::fabs((*delta)[b]); });
    for (size_t k = 0; k < idx.size(); ++k) {
      bool keep = out[idx[k]] != (*base)[idx[k]];
      kept += keep;
      if (k < idx.size() / 4) kept_low += keep;
      if (k >= 3 * idx.size() / 4) kept_high += keep;
    }
  }
  CHECK(kept / static_cast<double>(n) == doctest::Approx(0.5).epsilon(0.02));
  CHECK(kept_low / (static_cast<double>(n) / 4) == doctest::Approx(0.2 + 0.6 * 0.125).epsilon(0.03));
  CHECK(kept_high / (static_cast<double>(n) / 4) == doctest::Approx(0.2 + 0.6 * 0.875).epsilon(0.03));
}

TEST_CASE("identities: linear of one model, task arithmetic with weight 0, one-source slerp") {
  Data a = noise_data(5000, 31, 1.0f), b = noise_data(5000, 32, 1.0f);
  auto lin = spec("linear", {50, 100}, {a}, -1);
  lin.per_model[0]["weight"] = 1.0;
  CHECK(run(lin) == *a);
  lin.per_model[0]["weight"] = 0.3;  // (0.3 x) / 0.3: within one ulp
  auto out = run(lin);
  for (size_t i = 0; i < a->size(); ++i) CHECK(std::fabs(out[i] - (*a)[i]) <= std::fabs((*a)[i]) * 1.2e-7f);
  auto ta = spec("task_arithmetic", {50, 100}, {a, b}, 0);
  ta.per_model[1]["weight"] = 0.0;
  CHECK(run(ta) == *a);
  auto one = spec("slerp", {50, 100}, {b}, 0);
  one.global["t"] = 0.7;
  CHECK(run(one) == *b);
}

TEST_CASE("results do not depend on how rows are chunked") {
  const int64_t rows = 200, cols = 700;
  std::vector<Data> in = {noise_data(rows * cols, 41, 1.0f), noise_data(rows * cols, 42, 1.0f), noise_data(rows * cols, 43, 1.0f)};
  for (const char* method : {"ties", "dare_ties", "della", "breadcrumbs_ties", "sce", "slerp", "model_stock", "arcee_fusion"}) {
    CAPTURE(method);
    std::vector<Data> inputs = std::string(method) == "slerp" || std::string(method) == "arcee_fusion" ? std::vector<Data>{in[0], in[1]} : in;
    auto s = spec(method, {rows, cols}, inputs, 0);
    for (size_t k = 1; k < inputs.size(); ++k) {
      s.per_model[k]["weight"] = 1.0 / static_cast<double>(k);
      s.per_model[k]["density"] = 0.4;
    }
    s.global["t"] = 0.3;
    s.global["select_topk"] = 0.5;
    s.masks = seeded_masks(9, s.name);
    auto whole = run(s);
    auto m = make_tensor_merger(s);
    m->prepare();
    std::vector<float> pieces(whole.size());
    for (int64_t r = 0; r < rows;) {
      int64_t step = 1 + (r * 7) % 23;
      int64_t r1 = std::min(rows, r + step);
      m->rows(r, r1, pieces.data() + r * cols);
      r = r1;
    }
    CHECK(pieces == whole);
  }
}

TEST_CASE("bad parameters are refused before any data is read") {
  Data a = noise_data(64, 1, 1.0f), b = noise_data(64, 2, 1.0f);
  auto refuse = [](TensorMergeSpec s, const std::string& part) {
    try {
      make_tensor_merger(std::move(s));
      FAIL("accepted");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
  };
  auto ties = spec("ties", {8, 8}, {a, b}, 0);
  ties.per_model[1]["weight"] = 1;
  ties.per_model[1]["density"] = 1.5;
  refuse(ties, "density must be in (0, 1], found 1.5");
  ties.per_model[1]["density"] = 0.01;
  refuse(ties, "keeps no element of 64");
  auto della = spec("della", {8, 8}, {a, b}, 0);
  della.per_model[1]["weight"] = 1;
  della.per_model[1]["density"] = 0.9;
  della.per_model[1]["epsilon"] = 0.15;
  refuse(della, "density ± epsilon must be in (0, 1)");
  auto slerp = spec("slerp", {8, 8}, {a, b, b}, 0);
  slerp.global["t"] = 0.5;
  refuse(slerp, "slerp interpolates base_model and exactly one other model");
}
