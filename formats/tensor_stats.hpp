// Streaming per-tensor statistics (min, max, mean, std, L2 norm, NaN and Inf counts), computed
// in float64 over chunks of rows so any tensor size fits in bounded memory, in parallel across
// chunks. NaN/Inf values are counted and left out of the other statistics.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "formats/tensor_info.hpp"

namespace moeforge {

struct TensorStats {
  uint64_t count = 0;  // finite values
  uint64_t nan = 0;
  uint64_t inf = 0;
  double sum = 0, sum_sq = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  void add(const float* values, size_t n);
  void merge(const TensorStats& other);
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  double std() const;  // population standard deviation
  double l2() const;
  nlohmann::json to_json() const;
};

// Statistics of each tensor, in the given order; threads as in parallel_for.
std::vector<TensorStats> compute_stats(const std::vector<const TensorInfo*>& tensors, int threads);

}  // namespace moeforge
