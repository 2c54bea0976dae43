#include "compress/expert_selection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "compress/layer_file.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/random.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {
namespace {

struct CriterionInfo {
  Criterion c;
  const char* name;
  const char* meaning;
};
constexpr CriterionInfo kCriteria[] = {
    {Criterion::kReap, "reap", "REAP: mean over routed tokens of gate × ‖expert output‖₂"},
    {Criterion::kFrequency, "frequency", "tokens routed to the expert"},
    {Criterion::kWeightedFrequency, "weighted-frequency", "sum of the gate weights of routed tokens"},
    {Criterion::kEan, "ean", "EAN: sum over routed tokens of ‖expert output‖₂"},
    {Criterion::kEanMean, "ean-mean", "mean over routed tokens of ‖expert output‖₂"},
    {Criterion::kEasyEp, "easy-ep", "EASY-EP: sum of gate × ‖output‖ × max(0, 1 − cos(h, h + r))"},
    {Criterion::kRandom, "random", "a seeded random score (baseline)"},
};

const CriterionInfo& info(Criterion c) { return kCriteria[static_cast<int>(c)]; }

void check_budget(const SelectionOptions& o, int experts) {
  if (o.ratio && (*o.ratio <= 0 || *o.ratio >= 1)) throw UsageError("--ratio must be in (0, 1), found " + std::to_string(*o.ratio));
  if (o.keep && (*o.keep < 1 || *o.keep > experts))
    throw UsageError("--keep " + std::to_string(*o.keep) + " must be in [1, " + std::to_string(experts) + "] (experts per layer)");
}

int keep_count(const SelectionOptions& o, int experts) {
  if (o.keep) return *o.keep;
  int drop = static_cast<int>(std::floor(experts * *o.ratio));
  return std::max(1, experts - drop);
}

}  // namespace

Criterion parse_criterion(const std::string& name) {
  for (const auto& c : kCriteria)
    if (name == c.name) return c.c;
  throw UsageError("--criterion \"" + name + "\": expected reap, frequency, weighted-frequency, ean, ean-mean, easy-ep or random");
}
const char* criterion_name(Criterion c) { return info(c).name; }
std::string criterion_meaning(Criterion c) { return info(c).meaning; }

Scores score_experts(Criterion c, const FileStats* stats, const ModelConfig& m, uint64_t seed) {
  Scores out(static_cast<size_t>(m.n_layers));
  for (int l = 0; l < m.n_layers; ++l) {
    if (!m.is_moe_layer(l)) continue;
    auto& row = out[static_cast<size_t>(l)];
    if (c == Criterion::kRandom) {
      SeededStream stream(seed, fnv1a("prune." + std::to_string(l)));
      for (int e = 0; e < m.n_experts; ++e) row.push_back(stream.uniform(static_cast<uint64_t>(e)));
      continue;
    }
    if (stats == nullptr) throw UsageError(std::string("--criterion ") + criterion_name(c) + " needs calibration statistics: --stats FILE or --data FILE...");
    const ExpertLayerStats& s = stats->experts[static_cast<size_t>(l)];
    VecD v;
    switch (c) {
      case Criterion::kReap: v = s.reap(); break;
      case Criterion::kFrequency: v = s.count; break;
      case Criterion::kWeightedFrequency: v = s.gate_sum; break;
      case Criterion::kEan: v = s.ean_sum; break;
      case Criterion::kEanMean: v = s.ean_mean(); break;
      case Criterion::kEasyEp: v = s.easy_ep_sum; break;
      case Criterion::kRandom: break;
    }
    row.assign(v.data(), v.data() + v.size());
    // A NaN would rank arbitrarily and silently decide which experts die.
    for (int e = 0; e < m.n_experts; ++e)
      if (!std::isfinite(row[static_cast<size_t>(e)]))
        throw FormatError(stats->file + ": layer " + std::to_string(l) + ", expert " + std::to_string(e) + ": the " + criterion_name(c) +
                          " score is " + std::to_string(row[static_cast<size_t>(e)]) +
                          "; hint: the statistics are corrupt or the model produced non-finite activations (moeforge inspect --stats)");
  }
  return out;
}

LayerExperts read_layer_experts(const std::filesystem::path& path, const ModelConfig& m) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) layer_file_error(path, "expected a JSON object {\"layer\": [expert, ...]}");
  LayerExperts out;
  for (const auto& [key, list] : j.items()) {
    int layer = layer_of_key(path, key, m);
    if (!list.is_array()) layer_file_error(path, "layer " + key + ": expected a list of expert indices");
    for (const auto& e : list) out[layer].push_back(expert_of_value(path, key, e, m));
  }
  return out;
}

std::vector<std::vector<bool>> super_experts(const ModelConfig& m, const FileStats& stats) {
  std::vector<double> all;
  for (int l = 0; l < m.n_layers; ++l)
    if (m.is_moe_layer(l))
      for (int e = 0; e < m.n_experts; ++e) all.push_back(stats.experts[static_cast<size_t>(l)].max_act[e]);
  std::vector<std::vector<bool>> out(static_cast<size_t>(m.n_layers));
  if (all.empty()) return out;
  std::vector<double> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  double q = sorted[static_cast<size_t>(std::floor(0.995 * static_cast<double>(sorted.size() - 1)))];
  double threshold = std::max(q, sorted.back() / 10);
  for (int l = 0; l < m.n_layers; ++l) {
    if (!m.is_moe_layer(l)) continue;
    for (int e = 0; e < m.n_experts; ++e) out[static_cast<size_t>(l)].push_back(stats.experts[static_cast<size_t>(l)].max_act[e] >= threshold);
  }
  return out;
}

Selection select_experts(const ModelConfig& m, const Scores* scores, const FileStats* stats, const SelectionOptions& o) {
  const int E = m.n_experts;
  bool manual = !o.keep_list.empty() || !o.drop_list.empty();
  if (!manual && !o.ratio && !o.keep) throw UsageError("say how many experts to keep: --ratio R, --keep N, --keep-list or --drop-list");
  if (!manual && scores == nullptr) throw Error(ExitCode::kInternal, "no scores");
  if (!o.keep_list.empty() && !o.drop_list.empty())
    throw UsageError("--keep-list and --drop-list both decide which experts stay; give one of them");
  check_budget(o, E);
  if (o.ratio && std::floor(E * *o.ratio) < 1)
    warn("--ratio " + format_number(*o.ratio) + " of " + std::to_string(E) + " experts per layer drops none (⌊" + std::to_string(E) + " × " +
         format_number(*o.ratio) + "⌋ = 0); hint: a larger ratio, or --keep");
  Selection s;
  s.kept.resize(static_cast<size_t>(m.n_layers));
  s.protected_.resize(static_cast<size_t>(m.n_layers));
  s.super_experts_per_layer.assign(static_cast<size_t>(m.n_layers), 0);
  std::vector<std::vector<bool>> super;
  if (o.protect_super_experts) {
    if (stats == nullptr) throw UsageError("--protect-super-experts needs calibration statistics");
    super = super_experts(m, *stats);
  }
  for (int l = 0; l < m.n_layers; ++l) {
    if (!m.is_moe_layer(l)) continue;
    auto& prot = s.protected_[static_cast<size_t>(l)];
    prot.assign(static_cast<size_t>(E), false);
    if (auto it = o.protect.find(l); it != o.protect.end())
      for (int e : it->second) prot[e] = true;
    if (!super.empty())
      for (int e = 0; e < E; ++e)
        if (super[static_cast<size_t>(l)][e] && !prot[e]) {
          prot[e] = true;
          ++s.super_experts_per_layer[static_cast<size_t>(l)];
        }
  }
  auto finish = [&](int l, std::vector<int> kept) {
    std::sort(kept.begin(), kept.end());
    s.kept[static_cast<size_t>(l)] = std::move(kept);
  };
  if (manual) {
    for (int l = 0; l < m.n_layers; ++l) {
      if (!m.is_moe_layer(l)) continue;
      std::vector<bool> keep(static_cast<size_t>(E), o.keep_list.empty());
      if (auto it = o.keep_list.find(l); it != o.keep_list.end())
        for (int e : it->second) keep[e] = true;
      if (auto it = o.drop_list.find(l); it != o.drop_list.end())
        for (int e : it->second) {
          if (s.protected_[static_cast<size_t>(l)][e]) throw UsageError("layer " + std::to_string(l) + ": expert " + std::to_string(e) + " is both protected and dropped");
          keep[e] = false;
        }
      std::vector<int> kept;
      for (int e = 0; e < E; ++e)
        if (keep[e] || s.protected_[static_cast<size_t>(l)][e]) kept.push_back(e);
      finish(l, kept);
    }
    return s;
  }
  // Rank (score, protected first) so that ties keep the lower index.
  auto score_of = [&](int l, int e) {
    return s.protected_[static_cast<size_t>(l)][e] ? std::numeric_limits<double>::infinity() : (*scores)[static_cast<size_t>(l)][e];
  };
  if (!o.global) {
    int n = keep_count(o, E);
    for (int l = 0; l < m.n_layers; ++l) {
      if (!m.is_moe_layer(l)) continue;
      std::vector<int> order(static_cast<size_t>(E));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score_of(l, a) > score_of(l, b); });
      int protected_count = static_cast<int>(std::count(s.protected_[static_cast<size_t>(l)].begin(), s.protected_[static_cast<size_t>(l)].end(), true));
      if (protected_count > n)
        throw UsageError("layer " + std::to_string(l) + ": " + std::to_string(protected_count) + " protected experts exceed the budget of " + std::to_string(n));
      finish(l, std::vector<int>(order.begin(), order.begin() + n));
    }
    return s;
  }
  // Global: one ranking across layers; every layer keeps at least experts-per-token.
  int moe_layers = m.n_moe_layers(), floor_k = m.top_k;
  int total = keep_count(o, E) * moe_layers;
  std::vector<std::pair<int, int>> all;
  for (int l = 0; l < m.n_layers; ++l)
    if (m.is_moe_layer(l))
      for (int e = 0; e < E; ++e) all.emplace_back(l, e);
  std::stable_sort(all.begin(), all.end(), [&](auto a, auto b) { return score_of(a.first, a.second) > score_of(b.first, b.second); });
  std::vector<std::vector<int>> kept(static_cast<size_t>(m.n_layers));
  int budget = total;
  for (int l = 0; l < m.n_layers; ++l) {  // the floor first: each layer's best floor_k
    if (!m.is_moe_layer(l)) continue;
    for (const auto& [layer, e] : all)
      if (layer == l && static_cast<int>(kept[l].size()) < floor_k) kept[l].push_back(e);
    budget -= floor_k;
  }
  for (const auto& [l, e] : all) {
    if (budget <= 0) break;
    if (std::find(kept[l].begin(), kept[l].end(), e) != kept[l].end()) continue;
    kept[l].push_back(e);
    --budget;
  }
  for (int l = 0; l < m.n_layers; ++l)
    if (m.is_moe_layer(l)) finish(l, kept[l]);
  return s;
}

}  // namespace moeforge
