#include "compress/expert_grouping.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "compress/layer_file.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {
namespace {

Groups from_labels(const std::vector<int>& label, int k) {
  Groups g(static_cast<size_t>(k));
  for (size_t e = 0; e < label.size(); ++e) g[static_cast<size_t>(label[e])].push_back(static_cast<int>(e));
  g.erase(std::remove_if(g.begin(), g.end(), [](const auto& x) { return x.empty(); }), g.end());
  return sorted_groups(std::move(g));
}

}  // namespace

Groups sorted_groups(Groups g) {
  for (auto& x : g) std::sort(x.begin(), x.end());
  std::sort(g.begin(), g.end(), [](const auto& a, const auto& b) { return a.front() < b.front(); });
  return g;
}

Groups kmeans_groups(const MatD& raw, int k, uint64_t seed) {
  const int n = static_cast<int>(raw.rows());
  if (k >= n) {
    Groups g;
    for (int e = 0; e < n; ++e) g.push_back({e});
    return g;
  }
  MatD x = raw;
  for (int i = 0; i < n; ++i)
    if (x.row(i).norm() > 0) x.row(i).normalize();
  // k-means++ seeding, deterministic for a seed.
  SeededStream stream(seed, fnv1a("kmeans"));
  uint64_t draw = 0;
  std::vector<int> centres = {static_cast<int>(stream.uniform(draw++) * n)};
  std::vector<double> d2(static_cast<size_t>(n));
  while (static_cast<int>(centres.size()) < k) {
    double total = 0;
    for (int i = 0; i < n; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (int c : centres) best = std::min(best, (x.row(i) - x.row(c)).squaredNorm());
      d2[i] = best;
      total += best;
    }
    int pick = 0;
    if (total > 0) {
      double target = stream.uniform(draw++) * total, acc = 0;
      for (pick = 0; pick < n - 1; ++pick) {
        acc += d2[pick];
        if (acc > target && d2[pick] > 0) break;
      }
    } else {
      while (std::find(centres.begin(), centres.end(), pick) != centres.end()) ++pick;  // all points coincide
    }
    centres.push_back(pick);
  }
  MatD mu(k, x.cols());
  for (int c = 0; c < k; ++c) mu.row(c) = x.row(centres[c]);
  std::vector<int> label(static_cast<size_t>(n), -1);
  for (int iter = 0; iter < 300; ++iter) {
    bool changed = false;
    for (int i = 0; i < n; ++i) {
      int best = 0;
      double bd = std::numeric_limits<double>::infinity();
      for (int c = 0; c < k; ++c) {
        double d = (x.row(i) - mu.row(c)).squaredNorm();
        if (d < bd) {
          bd = d;
          best = c;
        }
      }
      changed = changed || label[i] != best;
      label[i] = best;
    }
    if (!changed) break;
    for (int c = 0; c < k; ++c) {
      Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(x.cols());
      int count = 0;
      for (int i = 0; i < n; ++i)
        if (label[i] == c) {
          sum += x.row(i);
          ++count;
        }
      if (count > 0) mu.row(c) = sum / count;
      else {  // an empty cluster takes the point farthest from its centre
        int far = 0;
        double fd = -1;
        for (int i = 0; i < n; ++i) {
          double d = (x.row(i) - mu.row(label[i])).squaredNorm();
          if (d > fd) {
            fd = d;
            far = i;
          }
        }
        mu.row(c) = x.row(far);
        label[far] = c;
      }
    }
  }
  return from_labels(label, k);
}

Groups hierarchical_groups(const MatD& x, int k) {
  const int n = static_cast<int>(x.rows());
  MatD dist(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) dist(i, j) = (x.row(i) - x.row(j)).norm();
  Groups g;
  for (int e = 0; e < n; ++e) g.push_back({e});
  while (static_cast<int>(g.size()) > k) {
    size_t a = 0, b = 1;
    double best = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < g.size(); ++i)
      for (size_t j = i + 1; j < g.size(); ++j) {
        double sum = 0;
        for (int p : g[i])
          for (int q : g[j]) sum += dist(p, q);
        double avg = sum / static_cast<double>(g[i].size() * g[j].size());
        if (avg < best) {
          best = avg;
          a = i;
          b = j;
        }
      }
    g[a].insert(g[a].end(), g[b].begin(), g[b].end());
    g.erase(g.begin() + static_cast<std::ptrdiff_t>(b));
  }
  return sorted_groups(std::move(g));
}

Groups dominant_groups(const VecD& usage, const MatD& sim, int k) {
  const int n = static_cast<int>(usage.size());
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return usage[a] > usage[b]; });
  std::vector<int> leaders(order.begin(), order.begin() + std::min(k, n));
  Groups g;
  for (int d : leaders) g.push_back({d});
  for (int e : order) {
    if (std::find(leaders.begin(), leaders.end(), e) != leaders.end()) continue;
    size_t best = 0;
    for (size_t i = 1; i < leaders.size(); ++i)
      if (sim(e, leaders[i]) > sim(e, leaders[best])) best = i;
    g[best].push_back(e);
  }
  return sorted_groups(std::move(g));
}

MatD logit_trace_similarity(const MatD& gram) {
  MatD s(gram.rows(), gram.cols());
  for (Eigen::Index i = 0; i < gram.rows(); ++i)
    for (Eigen::Index j = 0; j < gram.cols(); ++j) {
      double d = std::sqrt(gram(i, i) * gram(j, j));
      s(i, j) = d > 0 ? gram(i, j) / d : 0.0;
    }
  return s;
}

std::vector<Groups> read_groups_file(const std::filesystem::path& path, const ModelConfig& m) {
  nlohmann::json j = read_json_file(path);
  auto fail = [&](const std::string& what) { layer_file_error(path, what); };
  if (!j.is_object()) fail("expected a JSON object {\"layer\": [[experts], ...]}");
  std::vector<Groups> out(static_cast<size_t>(m.n_layers));
  for (const auto& [key, groups] : j.items()) {
    int layer = layer_of_key(path, key, m);
    if (!groups.is_array()) fail("layer " + key + ": expected a list of groups");
    std::vector<int> seen(static_cast<size_t>(m.n_experts), 0);
    Groups g;
    for (const auto& group : groups) {
      if (!group.is_array() || group.empty()) fail("layer " + key + ": every group is a non-empty list of experts");
      std::vector<int> members;
      for (const auto& e : group) {
        int expert = expert_of_value(path, key, e, m);
        if (seen[expert]++) fail("layer " + key + ": expert " + e.dump() + " appears in two groups");
        members.push_back(expert);
      }
      g.push_back(members);
    }
    for (int e = 0; e < m.n_experts; ++e)
      if (!seen[e]) fail("layer " + key + ": expert " + std::to_string(e) + " is in no group (list every expert; singletons stay as they are)");
    out[static_cast<size_t>(layer)] = sorted_groups(std::move(g));
  }
  return out;
}

}  // namespace moeforge
