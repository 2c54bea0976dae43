#include "engine/stats_tensors.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "engine/distributed.hpp"

namespace moeforge {
namespace {

struct ReductionEntry {
  const char* statistic;
  Reduction reduction;
};
// Statistics that are not sums. Everything else adds up.
constexpr ReductionEntry kReductions[] = {
    {"max_act", Reduction::kMax},
};

void fold_values(Reduction r, double* acc, const double* values, size_t n) {
  if (r == Reduction::kMax)
    for (size_t i = 0; i < n; ++i) acc[i] = std::max(acc[i], values[i]);
  else
    for (size_t i = 0; i < n; ++i) acc[i] += values[i];
}

}  // namespace

Reduction reduction_of(std::string_view name) {
  size_t dot = name.rfind('.');
  std::string_view stat = dot == std::string_view::npos ? name : name.substr(dot + 1);
  for (const auto& e : kReductions)
    if (stat == e.statistic) return e.reduction;
  return Reduction::kSum;
}

const char* reduction_name(Reduction r) { return r == Reduction::kMax ? "max" : "sum"; }

const StatTensor* StatsTensors::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void fold(StatTensor& into, const double* values, size_t n) {
  if (n != into.values.size())
    throw Error(ExitCode::kInternal, "tensor '" + into.name + "': folding " + std::to_string(n) + " values into " + std::to_string(into.values.size()));
  fold_values(reduction_of(into.name), into.values.data(), values, n);
}

void reduce_across_processes(StatsTensors& stats) {
  if (processes().size == 1) return;
  std::vector<double> flat;
  std::vector<size_t> begin;  // where each tensor starts in `flat`
  for (const auto& t : stats.tensors) {
    begin.push_back(flat.size());
    flat.insert(flat.end(), t.values.begin(), t.values.end());
  }
  begin.push_back(flat.size());
  reduce_in_rank_order(flat, [&](size_t offset, const double* values, size_t n) {
    // The piece [offset, offset + n) may span several tensors.
    size_t t = static_cast<size_t>(std::upper_bound(begin.begin(), begin.end(), offset) - begin.begin()) - 1;
    for (size_t done = 0; done < n; ++t) {
      size_t from = offset + done, to = std::min(offset + n, begin[t + 1]);
      if (to <= from) continue;
      fold_values(reduction_of(stats.tensors[t].name), flat.data() + from, values + done, to - from);
      done += to - from;
    }
  });
  for (size_t t = 0; t < stats.tensors.size(); ++t)
    std::copy(flat.begin() + static_cast<std::ptrdiff_t>(begin[t]), flat.begin() + static_cast<std::ptrdiff_t>(begin[t + 1]), stats.tensors[t].values.begin());
}

}  // namespace moeforge
