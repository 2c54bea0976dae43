// Sub-MoE subspace merging of one projection of a group of experts. The members' matrices
// W_i [O, C] are concatenated along their input dimension, W = [W_1 | … | W_n] = U Σ Vᵀ; V splits
// into per-expert blocks V_i with W_i = U Σ V_iᵀ; the merged matrix is U_r Σ_r (Σ f_i V_i)_rᵀ with
// weights f_i summing to 1, which is exactly U_r U_rᵀ (Σ f_i W_i): at full rank the frequency-
// weighted average, truncated its projection onto the top-r left singular subspace. U_r comes from
// the largest eigenpairs of the smaller Gram matrix (W Wᵀ or Wᵀ W) in float64 (LAPACK dsyevr), which
// measured several times faster than a direct SVD of the wide W (bench/README.md). Callers skip the
// decomposition at full rank, where the result is the weighted average by the identity above.
#pragma once
#include <vector>

#include "engine/calibration_stats.hpp"

namespace moeforge {

struct RankChoice {
  int rank = 0;       // keep this many singular directions (0: not set)
  double energy = 0;  // or the fewest whose σ² sum reaches this fraction (0: not set)
  bool full() const { return rank == 0 && energy == 0; }
};

struct SubspaceResult {
  MatD merged;
  int rank_used = 0;
  int numerical_rank = 0;
  std::vector<double> singular_values;  // descending
};

SubspaceResult subspace_merge(const std::vector<MatD>& members, const std::vector<double>& weights, const RankChoice& rank);

}  // namespace moeforge
