// The largest eigenpairs of a symmetric matrix through LAPACK's dsyevr (relatively robust
// representations; only the requested pairs are computed), and the Gram matrix Wᵀ-products through
// BLAS dsyrk. LAPACK/BLAS come from Debian (OpenBLAS when installed); they are asked to use one
// thread, so results do not depend on the thread count and parallelism comes from merging several
// tensors at once.
#pragma once
#include <vector>

#include "engine/matrix.hpp"

namespace moeforge {

struct EigenPairs {
  std::vector<double> values;  // descending
  Eigen::MatrixXd vectors;     // column j belongs to values[j]
};

// The `count` largest eigenpairs (all when count >= n); count = 0 returns all eigenvalues and no vectors.
EigenPairs largest_eigenpairs(const Eigen::MatrixXd& symmetric, int count);

// A·Aᵀ (when rows_side) or Aᵀ·A for a row-major A, as a dense symmetric matrix.
Eigen::MatrixXd gram(const MatD& a, bool rows_side);

}  // namespace moeforge
