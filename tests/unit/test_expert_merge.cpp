// Expert merging: the subspace identities, neuron alignment invariance, lossless merging of
// identical experts, the linear assignment solver, the clusterings and the groups file.
#include <doctest/doctest.h>

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "compress/expert_merge.hpp"
#include "compress/linear_assignment.hpp"
#include "core/error.hpp"
#include "formats/sharded_writer.hpp"
#include "merge/upcycle.hpp"
#include "engine/engine.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;

namespace {

MatD random_matrix(int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, 1);
  MatD m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

double relative(const MatD& a, const MatD& b) { return (a - b).norm() / b.norm(); }

Eigen::VectorXd swiglu(const FfnWeights& w, const Eigen::VectorXd& x) {
  Eigen::VectorXd g = w.gate * x, u = w.up * x, a(g.size());
  for (Eigen::Index i = 0; i < g.size(); ++i) a[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  return w.down * a;
}

}  // namespace

TEST_CASE("full-rank subspace merging equals the frequency-weighted average") {
  for (auto [o, c, n] : {std::tuple{24, 10, 3}, {10, 24, 2}, {16, 16, 4}}) {
    std::vector<MatD> members;
    for (int i = 0; i < n; ++i) members.push_back(random_matrix(o, c, 10 + i));
    std::vector<double> w(n);
    std::iota(w.begin(), w.end(), 1.0);
    double total = std::accumulate(w.begin(), w.end(), 0.0);
    for (auto& x : w) x /= total;
    MatD average = MatD::Zero(o, c);
    for (int i = 0; i < n; ++i) average += w[i] * members[i];
    RankChoice all;
    all.rank = 1 << 20;  // more than any rank: the decomposition runs, nothing is cut
    SubspaceResult r = subspace_merge(members, w, all);
    CHECK(r.rank_used == std::min(o, n * c));
    CHECK(relative(r.merged, average) < 1e-10);
  }
}

TEST_CASE("rank-r subspace merging is the average projected on the top-r left singular subspace") {
  std::vector<MatD> members = {random_matrix(20, 12, 1), random_matrix(20, 12, 2), random_matrix(20, 12, 3)};
  std::vector<double> w = {0.5, 0.3, 0.2};
  MatD wide(20, 36), average = MatD::Zero(20, 12);
  for (int i = 0; i < 3; ++i) {
    wide.middleCols(i * 12, 12) = members[i];
    average += w[i] * members[i];
  }
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(wide, Eigen::ComputeThinU);  // an independent decomposition
  for (int r : {1, 5, 19}) {
    RankChoice choice;
    choice.rank = r;
    Eigen::MatrixXd U = svd.matrixU().leftCols(r);
    MatD want = U * (U.transpose() * average);
    CHECK(relative(subspace_merge(members, w, choice).merged, want) < 1e-9);
  }
  RankChoice energy;
  energy.energy = 0.5;
  SubspaceResult e = subspace_merge(members, w, energy);
  double total = svd.singularValues().squaredNorm(), kept = 0;
  for (int i = 0; i < e.rank_used; ++i) kept += std::pow(svd.singularValues()[i], 2);
  CHECK(kept >= 0.5 * total);
  CHECK(kept - std::pow(svd.singularValues()[e.rank_used - 1], 2) < 0.5 * total);
}

TEST_CASE("neuron alignment leaves an expert's function unchanged and finds a planted permutation") {
  FfnWeights ref{random_matrix(12, 6, 1), random_matrix(12, 6, 2), random_matrix(6, 12, 3)};
  std::vector<int> perm(12);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(4));
  FfnWeights shuffled{MatD(12, 6), MatD(12, 6), MatD(6, 12)};
  for (int a = 0; a < 12; ++a) {
    shuffled.gate.row(a) = ref.gate.row(perm[a]) + 0.01 * random_matrix(1, 6, 50 + a);
    shuffled.up.row(a) = ref.up.row(perm[a]);
    shuffled.down.col(a) = ref.down.col(perm[a]);
  }
  FfnWeights aligned = align_neurons(shuffled, ref);
  for (uint32_t s = 0; s < 5; ++s) {
    Eigen::VectorXd x = random_matrix(6, 1, 100 + s).col(0);
    CHECK((swiglu(aligned, x) - swiglu(shuffled, x)).norm() <= 1e-12 * (1 + swiglu(shuffled, x).norm()));
  }
  CHECK((aligned.up - ref.up).norm() < 1e-12);  // the planted permutation is undone
}

TEST_CASE("neuron alignment with biases (gpt-oss): gate/up biases move with their neurons, the down bias stays") {
  FfnWeights ref{random_matrix(10, 6, 1), random_matrix(10, 6, 2), random_matrix(6, 10, 3),
                 random_matrix(10, 1, 4).col(0), random_matrix(10, 1, 5).col(0), random_matrix(6, 1, 6).col(0)};
  std::vector<int> perm(10);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
  FfnWeights shuffled{MatD(10, 6), MatD(10, 6), MatD(6, 10), VecD(10), VecD(10), ref.down_bias};
  for (int a = 0; a < 10; ++a) {
    shuffled.gate.row(a) = ref.gate.row(perm[a]);
    shuffled.up.row(a) = ref.up.row(perm[a]);
    shuffled.down.col(a) = ref.down.col(perm[a]);
    shuffled.gate_bias[a] = ref.gate_bias[perm[a]];
    shuffled.up_bias[a] = ref.up_bias[perm[a]];
  }
  FfnWeights aligned = align_neurons(shuffled, ref);
  CHECK((aligned.gate - ref.gate).norm() == 0);
  CHECK((aligned.gate_bias - ref.gate_bias).norm() == 0);
  CHECK((aligned.up_bias - ref.up_bias).norm() == 0);
  CHECK((aligned.down_bias - ref.down_bias).norm() == 0);
}

TEST_CASE("the assignment solver finds the optimum (brute force on small cases)") {
  std::mt19937 rng(9);
  for (int n : {1, 2, 4, 6}) {
    MatD score = random_matrix(n, n, static_cast<uint32_t>(rng()));
    std::vector<int> got = max_weight_assignment(score), perm(n);
    double best = -1e300, value = 0;
    for (int r = 0; r < n; ++r) value += score(r, got[r]);
    std::iota(perm.begin(), perm.end(), 0);
    do {
      double v = 0;
      for (int r = 0; r < n; ++r) v += score(r, perm[r]);
      best = std::max(best, v);
    } while (std::next_permutation(perm.begin(), perm.end()));
    CHECK(value == doctest::Approx(best).epsilon(1e-12));
  }
}

TEST_CASE("clusterings recover planted groups and are deterministic") {
  MatD x(6, 3);
  x << 1, 0, 0, 0.9, 0.1, 0, 0, 1, 0, 0.05, 0.95, 0, 0, 0, 1, 0.1, 0, 0.9;
  Groups want = {{0, 1}, {2, 3}, {4, 5}};
  CHECK(kmeans_groups(x, 3, 1) == want);
  CHECK(kmeans_groups(x, 3, 1) == kmeans_groups(x, 3, 1));
  CHECK(hierarchical_groups(x, 3) == want);
  VecD usage(6);
  usage << 10, 1, 9, 1, 8, 1;
  MatD sim = x * x.transpose();
  CHECK(dominant_groups(usage, sim, 3) == want);
}

TEST_CASE("merging identical experts is lossless") {
  Checkpoint dense(test::fixture("models/tiny-llama"));
  UpcycleSpec up;
  up.model = &dense;
  up.copies = 8;
  test::ScratchDir dir("lossless");
  write_checkpoint(plan_upcycle(up), dir / "moe", {});
  Checkpoint moe(dir / "moe");
  ModelConfig c = resolve_config(moe.config(), "config.json");
  for (auto method : {MergeMethod::kAverage, MergeMethod::kSubMoe}) {
    MergeSpec s;
    s.model = &moe;
    s.config = &c;
    s.method = method;
    s.uniform_weights = true;
    // Identical copies span one 64-dimensional subspace; rank 64 cuts only zero singular values.
    s.rank.rank = method == MergeMethod::kSubMoe ? 64 : 0;
    s.fixed.resize(3);
    for (int l = 0; l < 3; ++l) s.fixed[l] = {{0, 1, 2}, {3, 4}, {5, 6, 7}};
    fs::path out = dir / (method == MergeMethod::kAverage ? "avg" : "sub");
    write_checkpoint(plan_merge_experts(s).plan, out, {});
    Checkpoint merged(out);
    CHECK(merged.config()["num_local_experts"] == 3);
    // The merged MoE still computes the dense model.
    struct Logits : Observer {
      std::vector<float> all;
      std::mutex m;
      bool wants_logits() const override { return true; }
      void logits(size_t, const float* l, int64_t n, int64_t v) override {
        std::lock_guard<std::mutex> lock(m);
        all.insert(all.end(), l, l + n * v);
      }
    } a, b;
    Batch batch;
    std::vector<int32_t> ids = {1, 5, 9, 13, 200, 17, 3, 3, 90, 101};
    batch.add_window(ids.data(), 10);
    Engine(merged).run(batch, a);
    Engine(dense).run(batch, b);
    double diff = 0;
    for (size_t i = 0; i < a.all.size(); ++i) diff = std::max(diff, static_cast<double>(std::fabs(a.all[i] - b.all[i])));
    CHECK(diff < 1e-4);
  }
}

TEST_CASE("groups files are validated") {
  Checkpoint moe(test::fixture("models/tiny-mixtral"));
  ModelConfig c = resolve_config(moe.config(), "config.json");
  test::ScratchDir dir("groups");
  test::write_bytes(dir / "ok.json", R"({"0": [[0, 1], [2], [3, 4, 5, 6, 7]]})");
  auto g = read_groups_file(dir / "ok.json", c);
  CHECK(g[0].size() == 3);
  CHECK(g[1].empty());
  test::write_bytes(dir / "dup.json", R"({"0": [[0, 1], [1], [2, 3, 4, 5, 6, 7]]})");
  CHECK_THROWS_WITH_AS(read_groups_file(dir / "dup.json", c), doctest::Contains("appears in two groups"), UsageError);
  test::write_bytes(dir / "missing.json", R"({"0": [[0, 1], [2, 3, 4, 5, 6]]})");
  CHECK_THROWS_WITH_AS(read_groups_file(dir / "missing.json", c), doctest::Contains("expert 7 is in no group"), UsageError);
  test::write_bytes(dir / "layer.json", R"({"3": [[0]]})");
  CHECK_THROWS_WITH_AS(read_groups_file(dir / "layer.json", c), doctest::Contains("layer \"3\" does not exist"), UsageError);
}
