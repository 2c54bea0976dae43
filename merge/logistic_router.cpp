// Multinomial logistic regression for routers (router_fit.hpp): L-BFGS on the mean negative
// log-likelihood plus the L2 penalty, preconditioned by M = (Σ x xᵀ + λI) / N (the router inputs
// share a large common component, which makes the plain problem badly conditioned); gradients are
// summed over fixed blocks of tokens in order, so the result does not depend on the thread count.
#include <Eigen/Cholesky>
#include <cmath>
#include <deque>
#include <limits>

#include "core/error.hpp"
#include "merge/router_fit.hpp"

namespace moeforge {
namespace {

constexpr int64_t kBlockRows = 1024;
constexpr int kHistory = 10;                 // L-BFGS memory
constexpr double kGradientTolerance = 1e-10; // relative to the gradient at W = 0, in the preconditioned norm
constexpr double kArmijo = 1e-4;

// f(W) = (Σ_n −log softmax(W x_n)_{y_n} + λ/2 ‖W‖²) / N and its gradient.
class LogisticObjective {
 public:
  LogisticObjective(const float* X, int64_t n, int64_t H, const int32_t* labels, double lambda)
      : X_(X), n_(n), H_(H), labels_(labels), lambda_(lambda) {}

  double evaluate(const MatD& W, MatD& grad) const {
    const int64_t blocks = (n_ + kBlockRows - 1) / kBlockRows;
    std::vector<double> loss(static_cast<size_t>(blocks), 0.0);
    std::vector<MatD> partial(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) partial[b] = block_gradient(W, b * kBlockRows, std::min(n_, (b + 1) * kBlockRows), &loss[b]);
    grad = lambda_ * W;
    double f = 0.5 * lambda_ * W.squaredNorm();
    for (int64_t b = 0; b < blocks; ++b) {
      f += loss[b];
      grad += partial[b];
    }
    const double inv = 1.0 / static_cast<double>(n_);
    grad *= inv;
    return f * inv;
  }

 private:
  // Loss and gradient of the tokens [r0, r1): Z = X Wᵀ, P = softmax of each row, G = (P − Y)ᵀ X.
  MatD block_gradient(const MatD& W, int64_t r0, int64_t r1, double* loss) const {
    const int64_t m = r1 - r0;
    Eigen::MatrixXd x(m, H_);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t d = 0; d < H_; ++d) x(i, d) = X_[(r0 + i) * H_ + d];
    Eigen::MatrixXd z = x * W.transpose();
    for (int64_t i = 0; i < m; ++i) {
      const int32_t y = labels_[r0 + i];
      const double top = z.row(i).maxCoeff(), label_logit = z(i, y);
      z.row(i) = (z.row(i).array() - top).exp();
      const double sum = z.row(i).sum();
      *loss += top + std::log(sum) - label_logit;
      z.row(i) /= sum;
      z(i, y) -= 1.0;
    }
    return z.transpose() * x;
  }

  const float* X_;
  int64_t n_, H_;
  const int32_t* labels_;
  double lambda_;
};

double dot(const MatD& a, const MatD& b) { return (a.array() * b.array()).sum(); }

// L-BFGS (two-loop recursion) whose initial inverse Hessian is γ M⁻¹, with a backtracking Armijo
// line search; the problem is strongly convex (λ > 0), so every accepted step has sᵀy > 0.
class Minimiser {
 public:
  Minimiser(const LogisticObjective& obj, const Eigen::LLT<Eigen::MatrixXd>& m) : obj_(obj), m_(m) {}

  MatD run(MatD W, int max_iterations, const std::string& what, std::vector<std::string>* warnings) {
    MatD g, g_new, W_new;
    double f = obj_.evaluate(W, g);
    const double g0 = precondition(g).cwiseAbs().maxCoeff();
    for (int it = 0; it < max_iterations; ++it) {
      if (precondition(g).cwiseAbs().maxCoeff() <= kGradientTolerance * g0) return W;
      MatD direction = -two_loop(g);
      double slope = dot(g, direction);
      if (!(slope < 0)) {  // not a descent direction (rounding): restart from the preconditioned gradient
        history_.clear();
        direction = -precondition(g);
        slope = dot(g, direction);
      }
      double step = 1.0, f_new = 0;
      for (int tries = 0;; ++tries) {
        W_new = W + step * direction;
        f_new = obj_.evaluate(W_new, g_new);
        if (f_new <= f + kArmijo * step * slope) break;
        if (tries == 50) return W;  // no decrease left at float64 precision: as converged as it gets
        step *= 0.5;
      }
      history_.emplace_back(W_new - W, g_new - g);
      if (history_.size() > kHistory) history_.pop_front();
      W.swap(W_new);
      g.swap(g_new);
      if (f - f_new <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(f)) return W;  // stalled at rounding level
      f = f_new;
    }
    warnings->push_back(what + ": logistic regression stopped after " + std::to_string(max_iterations) + " iterations before converging");
    return W;
  }

 private:
  MatD precondition(const MatD& q) const { return m_.solve(q.transpose()).transpose(); }

  MatD two_loop(const MatD& g) const {
    MatD q = g;
    std::vector<double> alpha(history_.size());
    for (size_t i = history_.size(); i-- > 0;) {
      alpha[i] = dot(history_[i].first, q) / dot(history_[i].second, history_[i].first);
      q -= alpha[i] * history_[i].second;
    }
    q = precondition(q);
    if (!history_.empty()) {
      const auto& [s, y] = history_.back();
      q *= dot(s, y) / dot(y, precondition(y));
    }
    for (size_t i = 0; i < history_.size(); ++i) {
      double beta = dot(history_[i].second, q) / dot(history_[i].second, history_[i].first);
      q += (alpha[i] - beta) * history_[i].first;
    }
    return q;
  }

  const LogisticObjective& obj_;
  const Eigen::LLT<Eigen::MatrixXd>& m_;
  std::deque<std::pair<MatD, MatD>> history_;  // (s, y)
};

}  // namespace

MatD logistic_router(const float* X, int64_t n, int64_t H, const int32_t* labels, int E, const FitOptions& o, const std::string& what,
                     std::vector<std::string>* warnings) {
  if (!(o.lambda > 0)) throw UsageError("--router-lambda must be > 0, found " + std::to_string(o.lambda));
  Eigen::setNbThreads(1);  // parallelism comes from the fixed token blocks
  VecD count = VecD::Zero(E);
  for (int64_t t = 0; t < n; ++t) {
    if (labels[t] < 0 || labels[t] >= E) throw Error(ExitCode::kInternal, "router fit: label " + std::to_string(labels[t]) + " out of range");
    count[labels[t]] += 1;
  }
  check_every_class_seen(count, what);
  MatD gram = MatD::Zero(H, H);
  accumulate_gram(gram, X, n);
  const double trace = gram.trace();
  if (!std::isfinite(trace)) throw FormatError(what + ": the router inputs are not finite (NaN or Inf); hint: check the model's weights");
  if (trace == 0) {
    warnings->push_back(what + ": the router inputs are all zero, so the logistic regression is singular; its router rows are zero");
    return MatD::Zero(E, H);
  }
  const double lambda = absolute_lambda(o.lambda, trace, H);
  Eigen::MatrixXd m = gram / static_cast<double>(n);
  m.diagonal().array() += lambda / static_cast<double>(n);
  Eigen::LLT<Eigen::MatrixXd> llt(m);
  if (llt.info() != Eigen::Success) throw Error(ExitCode::kInternal, what + ": the preconditioner is not positive definite");
  LogisticObjective obj(X, n, H, labels, lambda);
  MatD W = Minimiser(obj, llt).run(MatD::Zero(E, H), o.max_iterations, what, warnings);
  return W * o.scale;
}

}  // namespace moeforge
