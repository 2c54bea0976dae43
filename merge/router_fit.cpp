#include "merge/router_fit.hpp"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace moeforge {
namespace {

constexpr double kSingular = 1e-14;       // reciprocal condition number below which A + λI counts as singular

std::string format_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

void RidgeStats::init(int classes, int64_t H) {
  gram = MatD::Zero(H, H);
  class_sum = MatD::Zero(classes, H);
  count = VecD::Zero(classes);
}

void RidgeStats::add(const float* X, int64_t n, const int32_t* labels) {
  const int64_t H = hidden();
  for (int64_t t = 0; t < n; ++t) {
    if (labels[t] < 0 || labels[t] >= classes()) throw Error(ExitCode::kInternal, "router fit: label " + std::to_string(labels[t]) + " out of range");
    for (int64_t d = 0; d < H; ++d) class_sum(labels[t], d) += X[t * H + d];
    count[labels[t]] += 1;
  }
  accumulate_gram(gram, X, n);
}

void RidgeStats::merge(const RidgeStats& o) {
  if (count.size() == 0) {
    *this = o;
    return;
  }
  gram += o.gram;
  class_sum += o.class_sum;
  count += o.count;
}

double absolute_lambda(double lambda, double trace, int64_t hidden) { return lambda * trace / static_cast<double>(hidden); }

void check_every_class_seen(const VecD& count, const std::string& what) {
  for (Eigen::Index e = 0; e < count.size(); ++e)
    if (!(count[e] > 0))
      throw UsageError(what + ": expert " + std::to_string(e) + "'s data has no tokens; every expert needs data to fit a router");
}

MatD ridge_solution(const RidgeStats& s, double lambda, const std::string& what, std::vector<std::string>* warnings) {
  if (!(lambda > 0)) throw UsageError("--router-lambda must be > 0, found " + format_g(lambda));
  check_every_class_seen(s.count, what);
  const int64_t H = s.hidden();
  const double trace = s.gram.trace();
  if (!std::isfinite(trace)) throw FormatError(what + ": the router inputs are not finite (NaN or Inf); hint: check the model's weights");
  Eigen::MatrixXd B = s.class_sum.transpose();
  if (trace == 0) {
    warnings->push_back(what + ": the router inputs are all zero, so the ridge system is singular; its router rows are zero");
    return MatD::Zero(s.classes(), H);
  }
  Eigen::MatrixXd M = s.gram;
  M.diagonal().array() += absolute_lambda(lambda, trace, H);
  Eigen::LLT<Eigen::MatrixXd> llt(M);
  if (llt.info() == Eigen::Success && llt.rcond() > kSingular) return llt.solve(B).transpose();
  warnings->push_back(what + ": the ridge system A + λI is singular (reciprocal condition number " +
                      format_g(llt.info() == Eigen::Success ? llt.rcond() : 0.0) +
                      "); solved in the least-squares sense; hint: raise --router-lambda");
  Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(M);
  return cod.solve(B).transpose();
}

MatD ridge_router(const RidgeStats& s, const FitOptions& o, const std::string& what, std::vector<std::string>* warnings) {
  MatD rows = ridge_solution(s, o.lambda, what, warnings);
  for (Eigen::Index e = 0; e < rows.rows(); ++e) {
    double n = rows.row(e).norm();
    if (n > 0) rows.row(e) *= o.scale / n;
    else if (s.gram.trace() > 0) warnings->push_back(what + ": expert " + std::to_string(e) + "'s ridge row is zero");
  }
  return rows;
}

}  // namespace moeforge
