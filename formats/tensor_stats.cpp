#include "formats/tensor_stats.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/parallel.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {

void TensorStats::add(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    double x = v[i];
    if (std::isnan(x)) {
      ++nan;
    } else if (std::isinf(x)) {
      ++inf;
    } else {
      ++count;
      sum += x;
      sum_sq += x * x;
      min = std::min(min, x);
      max = std::max(max, x);
    }
  }
}

void TensorStats::merge(const TensorStats& o) {
  count += o.count;
  nan += o.nan;
  inf += o.inf;
  sum += o.sum;
  sum_sq += o.sum_sq;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

double TensorStats::std() const {
  if (count == 0) return 0.0;
  double m = mean();
  return std::sqrt(std::max(0.0, sum_sq / static_cast<double>(count) - m * m));
}

double TensorStats::l2() const { return std::sqrt(sum_sq); }

nlohmann::json TensorStats::to_json() const {
  nlohmann::json j = {{"mean", mean()}, {"std", std()}, {"l2", l2()}, {"nan", nan}, {"inf", inf}};
  j["min"] = count ? nlohmann::json(min) : nlohmann::json(nullptr);
  j["max"] = count ? nlohmann::json(max) : nlohmann::json(nullptr);
  return j;
}

std::vector<TensorStats> compute_stats(const std::vector<const TensorInfo*>& tensors, int threads) {
  constexpr int64_t kChunkValues = 1 << 22;
  struct Chunk {
    size_t tensor;
    int64_t r0, r1;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = *tensors[i];
    int64_t step = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(t.cols(), 1));
    for (int64_t r = 0; r < t.rows(); r += step) chunks.push_back({i, r, std::min(t.rows(), r + step)});
  }
  std::vector<TensorStats> partial(chunks.size());
  int n_threads = resolve_threads(threads);
  parallel_for(chunks.size(), n_threads, [&](size_t c, int) {
    const TensorInfo& t = *tensors[chunks[c].tensor];
    size_t n = static_cast<size_t>((chunks[c].r1 - chunks[c].r0) * t.cols());
    float* buf = thread_scratch(n);
    read_rows_f32(t, chunks[c].r0, chunks[c].r1, buf);
    partial[c].add(buf, n);
  });
  // Merge in chunk order so the float64 sums do not depend on the thread count.
  std::vector<TensorStats> out(tensors.size());
  for (size_t c = 0; c < chunks.size(); ++c) out[chunks[c].tensor].merge(partial[c]);
  return out;
}

}  // namespace moeforge
