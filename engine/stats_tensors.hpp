// Calibration statistics as the file holds them: a JSON description plus named float64 tensors.
// This is the form in which statistics are stored, merged (`moeforge stats merge`, several
// --stats files) and combined across MPI ranks, so all three use the same arithmetic.
//
// How two pieces of statistics over disjoint data combine is decided per tensor by the table
// kReductions (stats_tensors.cpp), keyed by the statistic's name (the tensor name after its last
// '.'): "max" takes the elementwise maximum; every statistic not in the table is a sum (counts,
// token totals, sums of values, sums of products such as Σ x xᵀ are all sums). A new statistic
// that is a sum therefore merges without code changes; a maximum (or minimum) needs a table entry.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

enum class Reduction { kSum, kMax };
Reduction reduction_of(std::string_view tensor_name);
const char* reduction_name(Reduction r);

struct StatTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<double> values;
};

struct StatsTensors {
  nlohmann::json description;      // the "moeforge_stats" metadata (see stats_file.hpp)
  std::vector<StatTensor> tensors;

  const StatTensor* find(const std::string& name) const;  // null when absent
};

// Folds `values` into `into` with the tensor's reduction.
void fold(StatTensor& into, const double* values, size_t n);

// Combines the statistics every MPI rank holds (same tensors, same shapes) in rank order; every
// rank ends with the result. Nothing happens outside an MPI job.
void reduce_across_processes(StatsTensors& stats);

}  // namespace moeforge
