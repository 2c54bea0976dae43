#include "compress/subspace_merge.hpp"

#include <algorithm>
#include <cmath>

#include "compress/symmetric_eigen.hpp"
#include "core/error.hpp"

namespace moeforge {
SubspaceResult subspace_merge(const std::vector<MatD>& members, const std::vector<double>& weights, const RankChoice& choice) {
  const Eigen::Index O = members[0].rows(), C = members[0].cols(), n = static_cast<Eigen::Index>(members.size());
  MatD average = MatD::Zero(O, C), wide(O, n * C);
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].rows() != O || members[i].cols() != C) throw Error(ExitCode::kInternal, "subspace_merge: members differ in shape");
    average += weights[i] * members[i];
    wide.middleCols(static_cast<Eigen::Index>(i) * C, C) = members[i];
  }
  // Left singular vectors of W = [W_1 | … | W_n] from whichever Gram matrix is smaller:
  // W Wᵀ = U Σ² Uᵀ directly, or Wᵀ W = V Σ² Vᵀ and U = W V Σ⁻¹.
  const bool left = O <= n * C;
  Eigen::MatrixXd g = gram(wide, left);
  SubspaceResult r;
  // One decomposition: the requested top-r pairs, or all of them when the rank is not fixed.
  EigenPairs top = largest_eigenpairs(g, choice.rank > 0 ? choice.rank : static_cast<int>(g.rows()));
  for (double l : top.values) r.singular_values.push_back(std::sqrt(std::max(0.0, l)));
  const double tol = r.singular_values[0] * static_cast<double>(std::max(O, n * C)) * 1e-15;
  r.numerical_rank = static_cast<int>(std::count_if(r.singular_values.begin(), r.singular_values.end(), [&](double s) { return s > tol; }));
  if (choice.energy > 0) {  // Σσ² over every direction is the trace of the Gram matrix
    double total = g.trace(), acc = 0;
    r.rank_used = r.numerical_rank;
    for (int i = 0; i < r.numerical_rank; ++i) {
      acc += r.singular_values[static_cast<size_t>(i)] * r.singular_values[static_cast<size_t>(i)];
      if (acc >= choice.energy * total) {
        r.rank_used = i + 1;
        break;
      }
    }
  } else {
    r.rank_used = r.numerical_rank;  // --rank r asked for r pairs; fewer when the rest are zero
  }
  top.vectors.conservativeResize(Eigen::NoChange, r.rank_used);
  Eigen::MatrixXd U = left ? top.vectors : Eigen::MatrixXd(wide * top.vectors);
  if (!left)
    for (int j = 0; j < r.rank_used; ++j) U.col(j) /= r.singular_values[static_cast<size_t>(j)];
  r.merged = U * (U.transpose() * average);
  return r;
}

}  // namespace moeforge
