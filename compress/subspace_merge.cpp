#include "compress/subspace_merge.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace moeforge {
namespace {

int choose_rank(const std::vector<double>& sigma, int numerical_rank, const RankChoice& r) {
  if (r.rank > 0) return std::min(r.rank, numerical_rank);
  if (r.energy > 0) {
    double total = 0, acc = 0;
    for (int i = 0; i < numerical_rank; ++i) total += sigma[i] * sigma[i];
    for (int i = 0; i < numerical_rank; ++i) {
      acc += sigma[i] * sigma[i];
      if (acc >= r.energy * total) return i + 1;
    }
  }
  return numerical_rank;
}

}  // namespace

SubspaceResult subspace_merge(const std::vector<MatD>& members, const std::vector<double>& weights, const RankChoice& choice) {
  const Eigen::Index O = members[0].rows(), C = members[0].cols(), n = static_cast<Eigen::Index>(members.size());
  MatD average = MatD::Zero(O, C);
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].rows() != O || members[i].cols() != C) throw Error(ExitCode::kInternal, "subspace_merge: members differ in shape");
    average += weights[i] * members[i];
  }
  SubspaceResult r;
  // Left singular vectors of W = [W_1 | … | W_n] from whichever Gram matrix is smaller.
  const bool left_gram = O <= n * C;
  Eigen::MatrixXd gram;
  if (left_gram) {
    gram = Eigen::MatrixXd::Zero(O, O);
    for (const auto& w : members) gram.noalias() += w * w.transpose();
  } else {
    MatD wide(O, n * C);
    for (Eigen::Index i = 0; i < n; ++i) wide.middleCols(i * C, C) = members[static_cast<size_t>(i)];
    gram.noalias() = wide.transpose() * wide;
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
  const Eigen::Index m = gram.rows();
  const auto& lambda = eig.eigenvalues();  // ascending
  for (Eigen::Index i = m - 1; i >= 0; --i) r.singular_values.push_back(std::sqrt(std::max(0.0, lambda[i])));
  const double tol = r.singular_values[0] * static_cast<double>(std::max(O, n * C)) * 1e-15;
  r.numerical_rank = static_cast<int>(std::count_if(r.singular_values.begin(), r.singular_values.end(), [&](double s) { return s > tol; }));
  r.rank_used = choose_rank(r.singular_values, r.numerical_rank, choice);
  Eigen::MatrixXd U(O, r.rank_used);
  if (left_gram) {
    for (int j = 0; j < r.rank_used; ++j) U.col(j) = eig.eigenvectors().col(m - 1 - j);
  } else {  // U = W V Σ⁻¹
    for (int j = 0; j < r.rank_used; ++j) {
      Eigen::VectorXd u = Eigen::VectorXd::Zero(O);
      const auto v = eig.eigenvectors().col(m - 1 - j);
      for (Eigen::Index i = 0; i < n; ++i) u += members[static_cast<size_t>(i)] * v.segment(i * C, C);
      U.col(j) = u / r.singular_values[static_cast<size_t>(j)];
    }
  }
  r.merged = U * (U.transpose() * average);
  return r;
}

}  // namespace moeforge
