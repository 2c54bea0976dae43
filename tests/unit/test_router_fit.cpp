// Fitted routers: ridge against an independent least-squares solve, additivity over parts,
// logistic regression against an independent Newton solve, separable clusters routed exactly,
// singular systems and bad input; the router-input Gram matrix in the statistics file.
#include <doctest/doctest.h>

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <cmath>
#include <random>

#include "core/error.hpp"
#include "engine/stats_file.hpp"
#include "formats/checkpoint.hpp"
#include "merge/router_fit.hpp"
#include "merge/router_fit_pass.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

// Gaussian clusters around E centres plus a large offset common to all tokens (as RMS-normalised
// hidden states have), `spread` the noise relative to the distance between centres.
struct Clusters {
  int64_t H = 0;
  int E = 0;
  std::vector<float> X;
  std::vector<int32_t> labels;
  int64_t n() const { return static_cast<int64_t>(labels.size()); }
};

Clusters make_clusters(int E, int64_t H, int64_t per_class, double spread, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Eigen::MatrixXd centres(E, H);
  for (int e = 0; e < E; ++e)
    for (int64_t d = 0; d < H; ++d) centres(e, d) = normal(rng);
  Eigen::VectorXd offset(H);
  for (int64_t d = 0; d < H; ++d) offset[d] = 3.0 + normal(rng);
  Clusters c;
  c.H = H;
  c.E = E;
  for (int64_t i = 0; i < per_class * E; ++i) {
    int e = static_cast<int>(i % E);
    c.labels.push_back(e);
    for (int64_t d = 0; d < H; ++d) c.X.push_back(static_cast<float>(offset[d] + centres(e, d) + spread * normal(rng)));
  }
  return c;
}

RidgeStats stats_of(const Clusters& c, int64_t begin, int64_t end) {
  RidgeStats s;
  s.init(c.E, c.H);
  s.add(c.X.data() + begin * c.H, end - begin, c.labels.data() + begin);
  return s;
}

int argmax_row(const MatD& rows, const float* x) {
  int best = 0;
  double best_v = -INFINITY;
  for (Eigen::Index e = 0; e < rows.rows(); ++e) {
    double v = 0;
    for (Eigen::Index d = 0; d < rows.cols(); ++d) v += rows(e, d) * x[d];
    if (v > best_v) best_v = v, best = static_cast<int>(e);
  }
  return best;
}

// The minimiser of Σ −log softmax(W x)_y + λ/2 ‖W‖² by plain Newton steps on the full Hessian.
Eigen::MatrixXd newton_logistic(const Clusters& c, double lambda) {
  const int E = c.E;
  const int64_t H = c.H, P = E * H;
  Eigen::VectorXd w = Eigen::VectorXd::Zero(P);  // w[e * H + d]
  for (int it = 0; it < 50; ++it) {
    Eigen::VectorXd g = lambda * w;
    Eigen::MatrixXd h = lambda * Eigen::MatrixXd::Identity(P, P);
    for (int64_t t = 0; t < c.n(); ++t) {
      Eigen::VectorXd x(H);
      for (int64_t d = 0; d < H; ++d) x[d] = c.X[t * H + d];
      Eigen::VectorXd z(E);
      for (int e = 0; e < E; ++e) z[e] = w.segment(e * H, H).dot(x);
      Eigen::VectorXd p = (z.array() - z.maxCoeff()).exp();
      p /= p.sum();
      for (int a = 0; a < E; ++a) {
        g.segment(a * H, H) += (p[a] - (a == c.labels[t] ? 1.0 : 0.0)) * x;
        for (int b = 0; b < E; ++b) h.block(a * H, b * H, H, H) += (p[a] * ((a == b) - p[b])) * x * x.transpose();
      }
    }
    Eigen::VectorXd step = h.ldlt().solve(g);
    w -= step;
    if (step.norm() < 1e-13 * (1 + w.norm())) break;
  }
  Eigen::MatrixXd W(E, H);
  for (int e = 0; e < E; ++e) W.row(e) = w.segment(e * H, H).transpose();
  return W;
}

}  // namespace

TEST_CASE("ridge: the solution equals an independent QR least-squares solve of [X; √λ I] within 1e-10") {
  Clusters c = make_clusters(3, 12, 70, 0.8, 1);
  RidgeStats s = stats_of(c, 0, c.n());
  std::vector<std::string> warnings;
  MatD W = ridge_solution(s, 0.05, "test", &warnings);
  CHECK(warnings.empty());
  // Independent: the stacked system [X; √λ I] W = [Y; 0] through Householder QR.
  const int64_t n = c.n(), H = c.H;
  Eigen::MatrixXd X(n, H), Y = Eigen::MatrixXd::Zero(n, c.E);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t d = 0; d < H; ++d) X(t, d) = c.X[t * H + d];
    Y(t, c.labels[t]) = 1;
  }
  const double lambda = 0.05 * (X.array().square().sum()) / H;
  Eigen::MatrixXd stacked(n + H, H), rhs = Eigen::MatrixXd::Zero(n + H, c.E);
  stacked << X, std::sqrt(lambda) * Eigen::MatrixXd::Identity(H, H);
  rhs.topRows(n) = Y;
  Eigen::MatrixXd reference = stacked.householderQr().solve(rhs).transpose();
  CAPTURE((W - reference).cwiseAbs().maxCoeff());
  CHECK((W - reference).cwiseAbs().maxCoeff() <= 1e-10);
  // Normalised rows times the scale.
  FitOptions o;
  o.lambda = 0.05;
  o.scale = 3.0;
  MatD rows = ridge_router(s, o, "test", &warnings);
  for (Eigen::Index e = 0; e < rows.rows(); ++e) {
    CHECK(rows.row(e).norm() == doctest::Approx(3.0).epsilon(1e-12));
    CHECK((rows.row(e) / 3.0 - reference.row(e) / reference.row(e).norm()).cwiseAbs().maxCoeff() <= 1e-10);
  }
}

TEST_CASE("ridge: accumulating in any number of parts gives the same router as one pass") {
  Clusters c = make_clusters(4, 20, 600, 1.0, 2);
  FitOptions o;
  std::vector<std::string> warnings;
  MatD one = ridge_router(stats_of(c, 0, c.n()), o, "test", &warnings);
  for (int parts : {2, 3, 7}) {
    RidgeStats merged;
    for (int p = 0; p < parts; ++p) merged.merge(stats_of(c, c.n() * p / parts, c.n() * (p + 1) / parts));
    MatD split = ridge_router(merged, o, "test", &warnings);
    CAPTURE(parts);
    CHECK((split - one).cwiseAbs().maxCoeff() <= 1e-12);
  }
  CHECK(warnings.empty());
}

TEST_CASE("ridge and logistic route every token of separable clusters to its cluster's expert") {
  Clusters c = make_clusters(5, 16, 200, 0.15, 3);
  FitOptions o;
  std::vector<std::string> warnings;
  MatD ridge = ridge_router(stats_of(c, 0, c.n()), o, "test", &warnings);
  MatD logistic = logistic_router(c.X.data(), c.n(), c.H, c.labels.data(), c.E, o, "test", &warnings);
  CHECK(warnings.empty());
  int64_t ridge_ok = 0, logistic_ok = 0;
  for (int64_t t = 0; t < c.n(); ++t) {
    ridge_ok += argmax_row(ridge, &c.X[t * c.H]) == c.labels[t];
    logistic_ok += argmax_row(logistic, &c.X[t * c.H]) == c.labels[t];
  }
  CHECK(ridge_ok == c.n());
  CHECK(logistic_ok == c.n());
}

TEST_CASE("logistic: L-BFGS reaches the optimum an independent Newton solve finds (1e-6), deterministic for any thread count") {
  Clusters c = make_clusters(3, 6, 120, 1.5, 4);  // overlapping clusters: a finite optimum without L2 too
  FitOptions o;
  o.lambda = 0.02;
  std::vector<std::string> warnings;
  MatD W = logistic_router(c.X.data(), c.n(), c.H, c.labels.data(), c.E, o, "test", &warnings);
  CAPTURE(warnings.empty() ? "" : warnings[0]);
  CHECK(warnings.empty());
  double trace = 0;
  for (float v : c.X) trace += static_cast<double>(v) * v;
  Eigen::MatrixXd reference = newton_logistic(c, 0.02 * trace / c.H);
  CAPTURE((W - reference).cwiseAbs().maxCoeff());
  CHECK((W - reference).cwiseAbs().maxCoeff() <= 1e-6 * reference.cwiseAbs().maxCoeff());
  o.scale = 2.0;
  MatD scaled = logistic_router(c.X.data(), c.n(), c.H, c.labels.data(), c.E, o, "test", &warnings);
  CHECK((scaled - 2.0 * W).cwiseAbs().maxCoeff() <= 1e-12 * W.cwiseAbs().maxCoeff());
  omp_set_num_threads(1);
  o.scale = 1.0;
  MatD single = logistic_router(c.X.data(), c.n(), c.H, c.labels.data(), c.E, o, "test", &warnings);
  omp_set_num_threads(3);
  MatD three = logistic_router(c.X.data(), c.n(), c.H, c.labels.data(), c.E, o, "test", &warnings);
  CHECK(single == three);
  CHECK(single == W);
}

TEST_CASE("fitted routers: singular systems warn naming the layer; empty classes and λ ≤ 0 are refused") {
  std::vector<std::string> warnings;
  RidgeStats zero;
  zero.init(2, 4);
  zero.count << 5, 5;
  MatD rows = ridge_router(zero, FitOptions{}, "layer 3 router", &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("layer 3 router") != std::string::npos);
  CHECK(warnings[0].find("singular") != std::string::npos);
  CHECK(rows.cwiseAbs().maxCoeff() == 0);

  // Rank 2 inputs in 6 dimensions with a vanishing λ: A + λI is numerically singular.
  Clusters c = make_clusters(2, 6, 50, 0.5, 5);
  for (int64_t t = 0; t < c.n(); ++t)
    for (int64_t d = 2; d < 6; ++d) c.X[t * 6 + d] = 0;
  warnings.clear();
  rows = ridge_solution(stats_of(c, 0, c.n()), 1e-30, "layer 1 router", &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("layer 1 router: the ridge system A + λI is singular") != std::string::npos);
  CHECK(rows.allFinite());

  RidgeStats one_class = stats_of(c, 0, 1);
  CHECK_THROWS_WITH_AS(ridge_solution(one_class, 0.01, "layer 0 router", &warnings), doctest::Contains("layer 0 router: expert 1's data has no tokens"),
                       UsageError);
  CHECK_THROWS_WITH_AS(ridge_solution(stats_of(c, 0, c.n()), 0.0, "x", &warnings), doctest::Contains("must be > 0"), UsageError);
  FitOptions negative;
  negative.lambda = -1;
  CHECK_THROWS_AS(logistic_router(c.X.data(), c.n(), 6, c.labels.data(), 2, negative, "x", &warnings), UsageError);
}

TEST_CASE("observe --router-gram: the statistics file holds Σ x xᵀ per MoE layer, and ridge statistics from files add up") {
  Checkpoint moe(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  DataOptions o;
  o.seq_len = 64;
  o.vocab = 256;
  o.max_tokens = 1024;
  auto file = [&](const char* d) { return load_data(test::fixture(std::string("corpora/") + d + "/calib.txt"), DataKind::kBytes, o); };
  CalibrationStats both = observe(Engine(moe), combine({file("en"), file("de")}), false, true);
  REQUIRE(both.router_gram);
  test::ScratchDir dir("gram");
  {
    OutputTransaction tx(false);
    write_stats(both, tx, dir / "s.safetensors");
    tx.commit();
  }
  CalibrationStats back = read_stats(dir / "s.safetensors");
  REQUIRE(back.router_gram);
  for (int l = 0; l < 2; ++l) {
    CHECK(back.files[1].router_input_gram[l] == both.files[1].router_input_gram[l]);
    CHECK(back.files[0].router_input_gram[l].trace() > 0);
  }
  // The same statistics, observed per file, give the same ridge statistics as one file with both.
  CalibrationStats en = observe(Engine(moe), combine({file("en")}), false, true);
  CalibrationStats de = observe(Engine(moe), combine({file("de")}), false, true);
  RidgeStats split = ridge_stats_from({en, de}, {0, 1}, 2, 1);
  RidgeStats joint = ridge_stats_from({back}, {0}, 2, 1);
  CHECK((split.gram - joint.gram).cwiseAbs().maxCoeff() <= 1e-9 * joint.gram.cwiseAbs().maxCoeff());
  CHECK(split.count[0] == 1024);
  CHECK(split.count[1] == 1024);
  CHECK(joint.count[0] == 2048);  // one statistics file is one class
  // Without --router-gram nothing is stored and the file stays as before.
  CalibrationStats plain = observe(Engine(moe), combine({file("en")}), false, false);
  CHECK_FALSE(plain.router_gram);
  CHECK(plain.files[0].router_input_gram.empty());
}
