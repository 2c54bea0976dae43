// Times the subspace merge of one mixtral-shaped layer (8 experts with gate/up [2816, 1024] and
// down [1024, 2816]) merged in pairs at a truncated rank, with moeforge's decomposition (the
// eigendecomposition of the smaller Gram matrix, float64) and with Eigen's BDCSVD of the
// concatenated matrix (float32 and float64), so the choice in compress/subspace_merge.cpp stays
// measured. Prints seconds per method and the largest difference between their results.
#include <Eigen/SVD>
#include <chrono>
#include <cstdio>
#include <random>

#include "compress/subspace_merge.hpp"

using namespace moeforge;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

template <typename Scalar>
MatD bdcsvd_merge(const std::vector<MatD>& m, const std::vector<double>& w, int rank) {
  using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index O = m[0].rows(), C = m[0].cols();
  M wide(O, C * static_cast<Eigen::Index>(m.size()));
  MatD average = MatD::Zero(O, C);
  for (size_t i = 0; i < m.size(); ++i) {
    wide.middleCols(static_cast<Eigen::Index>(i) * C, C) = m[i].cast<Scalar>();
    average += w[i] * m[i];
  }
  Eigen::BDCSVD<M> svd(wide, Eigen::ComputeThinU);
  Eigen::MatrixXd U = svd.matrixU().leftCols(rank).template cast<double>();
  return U * (U.transpose() * average);
}

}  // namespace

int main(int argc, char** argv) {
  const int rank = argc > 1 ? std::atoi(argv[1]) : 512;
  std::mt19937 rng(0);
  std::normal_distribution<double> normal(0, 0.02);
  auto random = [&](int r, int c) {
    MatD x(r, c);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(normal(rng));
    return x;
  };
  struct Projection {
    const char* name;
    int rows, cols;
  };
  const Projection projections[] = {{"gate", 2816, 1024}, {"up", 2816, 1024}, {"down", 1024, 2816}};
  std::vector<std::vector<MatD>> experts(8);
  for (auto& e : experts)
    for (const auto& p : projections) e.push_back(random(p.rows, p.cols));
  const std::vector<double> weights = {0.6, 0.4};
  double t_ours = 0, t_bdc32 = 0, t_bdc64 = 0, worst = 0;
  for (int g = 0; g < 4; ++g)
    for (int p = 0; p < 3; ++p) {
      std::vector<MatD> pair = {experts[2 * g][p], experts[2 * g + 1][p]};
      RankChoice choice;
      choice.rank = rank;
      auto t = std::chrono::steady_clock::now();
      MatD ours = subspace_merge(pair, weights, choice).merged;
      t_ours += seconds_since(t);
      t = std::chrono::steady_clock::now();
      MatD b32 = bdcsvd_merge<float>(pair, weights, rank);
      t_bdc32 += seconds_since(t);
      t = std::chrono::steady_clock::now();
      MatD b64 = bdcsvd_merge<double>(pair, weights, rank);
      t_bdc64 += seconds_since(t);
      worst = std::max(worst, (ours - b64).norm() / b64.norm());
    }
  std::printf("{\"rank\": %d, \"gram_eigh_f64\": %.3f, \"bdcsvd_f32\": %.3f, \"bdcsvd_f64\": %.3f, \"max_relative_difference\": %.2e}\n",
              rank, t_ours, t_bdc32, t_bdc64, worst);
  return 0;
}
