#include "compress/expert_merge.hpp"

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>

#include "compress/fused_expert_output.hpp"
#include "compress/linear_assignment.hpp"
#include "compress/reduced_moe.hpp"
#include "core/error.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

MatD read_matrix(const TensorInfo& t) {
  std::vector<double> v = read_f64(t);
  return Eigen::Map<MatD>(v.data(), t.rows(), t.cols());
}

// Mean expert outputs used as clustering features: over all tokens when observe ran every expert
// on every token, else over each expert's routed tokens.
MatD output_features(const ExpertLayerStats& s) {
  if (s.all_output_sum.size() > 0 && s.tokens > 0) return s.all_output_sum / s.tokens;
  MatD f = s.output_sum;
  for (Eigen::Index e = 0; e < f.rows(); ++e)
    if (s.count[e] > 0) f.row(e) /= s.count[e];
  return f;
}

Groups group_layer(const MergeSpec& s, int layer) {
  const ExpertLayerStats* st = s.stats ? &s.stats->experts[static_cast<size_t>(layer)] : nullptr;
  auto need = [&](const char* what) {
    if (st == nullptr) throw UsageError(std::string(what) + " needs calibration statistics: --stats FILE or --data FILE..., or fix the groups with --groups-file");
  };
  switch (s.method) {
    case MergeMethod::kSubMoe:
      need("--method sub-moe clustering");
      return kmeans_groups(output_features(*st), s.groups, s.seed + static_cast<uint64_t>(layer));
    case MergeMethod::kHcsmoe:
      need("--method hcsmoe clustering");
      return hierarchical_groups(output_features(*st), s.groups);
    case MergeMethod::kMsmoe:
      need("--method msmoe grouping");
      return dominant_groups(st->count, logit_trace_similarity(st->logit_gram), s.groups);
    case MergeMethod::kAverage: throw UsageError("--method average merges the groups you give: pass --groups-file");
  }
  return {};
}

std::vector<double> member_weights(const MergeSpec& s, int layer, const std::vector<int>& members) {
  std::vector<double> w(members.size(), 1.0);
  if (!s.uniform_weights && s.stats != nullptr)
    for (size_t i = 0; i < members.size(); ++i) w[i] = s.stats->experts[static_cast<size_t>(layer)].count[members[i]];
  double total = 0;
  for (double x : w) total += x;
  for (auto& x : w) x = total > 0 ? x / total : 1.0 / static_cast<double>(members.size());
  return w;
}

// The M-SMoE leader of a group: its most-used member (lowest index on ties).
int leader_of(const MergeSpec& s, int layer, const std::vector<int>& members) {
  int best = members[0];
  if (s.stats == nullptr) return best;
  const auto& count = s.stats->experts[static_cast<size_t>(layer)].count;
  for (int m : members)
    if (count[m] > count[best]) best = m;
  return best;
}

// Members of a group as float64 (aligned to the leader for msmoe), read once.
std::vector<FfnWeights> load_members(const MergeSpec& s, int layer, const OutputExpert& e, const std::function<FfnWeights(int)>& load) {
  std::vector<FfnWeights> out;
  int leader = leader_of(s, layer, e.members);
  FfnWeights reference = load(leader);
  for (int m : e.members) {
    FfnWeights w = m == leader ? reference : load(m);
    bool align = s.method == MergeMethod::kMsmoe && s.permute && m != leader;
    out.push_back(align ? align_neurons(w, reference) : w);
  }
  return out;
}

// A value computed once per (layer, leading member) for the `uses` producers that need it: the first
// caller computes it (the others wait for that, so nothing is computed twice and different keys load
// in parallel), and the entry is dropped after the last use.
template <typename T>
class SharedPerExpert {
 public:
  explicit SharedPerExpert(int uses) : uses_(uses) {}
  template <typename Compute>
  std::shared_ptr<const T> get(int layer, const OutputExpert& e, Compute compute) {
    std::promise<std::shared_ptr<const T>> promise;
    std::shared_future<std::shared_ptr<const T>> value;
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto [it, inserted] = cache_.try_emplace(std::make_pair(layer, e.members[0]));
      if (inserted) {
        it->second.value = promise.get_future().share();
        first = true;
      }
      value = it->second.value;
      if (++it->second.uses == uses_) cache_.erase(it);
    }
    if (first) {
      try {
        promise.set_value(std::make_shared<const T>(compute()));
      } catch (...) {
        promise.set_exception(std::current_exception());
      }
    }
    return value.get();
  }

 private:
  struct Entry {
    std::shared_future<std::shared_ptr<const T>> value;
    int uses = 0;
  };
  const int uses_;
  std::mutex mutex_;
  std::map<std::pair<int, int>, Entry> cache_;
};

// Each member's FFN (aligned to the leader for msmoe), shared by the merged expert's three projections.
std::vector<FfnWeights> load_member_ffns(const MergeSpec& s, int layer, const OutputExpert& e) {
  const Family& f = *s.config->family;
  return load_members(s, layer, e, [&](int m) {
    return FfnWeights{read_matrix(s.model->require_tensor(expert_tensor_name(f, layer, m, Proj::kGate))),
                      read_matrix(s.model->require_tensor(expert_tensor_name(f, layer, m, Proj::kUp))),
                      read_matrix(s.model->require_tensor(expert_tensor_name(f, layer, m, Proj::kDown))), {}, {}, {}};
  });
}

// The members' matrices merged: in a shared subspace (sub-moe with a rank), else weighted-averaged.
MatD merge_matrices(const std::vector<MatD>& mats, const std::vector<double>& weights, const RankChoice* subspace) {
  if (subspace != nullptr) return subspace_merge(mats, weights, *subspace).merged;
  MatD merged = MatD::Zero(mats[0].rows(), mats[0].cols());
  for (size_t i = 0; i < mats.size(); ++i) merged += weights[i] * mats[i];
  return merged;
}

// gpt-oss: the whole merged expert (weights as for the other families, biases the weighted average
// for every method, the subspace methods included), computed once for its four fused tensors.
FfnWeights merge_fused_expert(const MergeSpec& s, int layer, const OutputExpert& e) {
  auto members = load_members(s, layer, e, [&](int m) { return read_expert_f64(*s.model, *s.config, layer, m); });
  bool subspace = s.method == MergeMethod::kSubMoe && !s.rank.full();
  auto pick = [&](auto field) {
    std::vector<MatD> mats;
    for (const auto& w : members) mats.push_back(field(w));
    return merge_matrices(mats, e.weights, subspace ? &s.rank : nullptr);
  };
  auto average = [&](auto field) {
    VecD v = VecD::Zero(field(members[0]).size());
    for (size_t i = 0; i < members.size(); ++i) v += e.weights[i] * field(members[i]);
    return v;
  };
  FfnWeights out;
  out.gate = pick([](const FfnWeights& w) { return w.gate; });
  out.up = pick([](const FfnWeights& w) { return w.up; });
  out.down = pick([](const FfnWeights& w) { return w.down; });
  out.gate_bias = average([](const FfnWeights& w) { return w.gate_bias; });
  out.up_bias = average([](const FfnWeights& w) { return w.up_bias; });
  out.down_bias = average([](const FfnWeights& w) { return w.down_bias; });
  return out;
}

}  // namespace

MergeMethod parse_merge_method(const std::string& name) {
  if (name == "sub-moe") return MergeMethod::kSubMoe;
  if (name == "msmoe") return MergeMethod::kMsmoe;
  if (name == "hcsmoe") return MergeMethod::kHcsmoe;
  if (name == "average") return MergeMethod::kAverage;
  throw UsageError("--method \"" + name + "\": expected sub-moe, msmoe, hcsmoe or average");
}

FfnWeights align_neurons(const FfnWeights& x, const FfnWeights& ref) {
  // score[a][b]: how well neuron a of x matches neuron b of the reference.
  // Biases (gpt-oss) count as one more input column of gate and up.
  MatD score = x.gate * ref.gate.transpose() + x.up * ref.up.transpose() + x.down.transpose() * ref.down;
  const bool biased = x.gate_bias.size() > 0;
  if (biased) score += x.gate_bias * ref.gate_bias.transpose() + x.up_bias * ref.up_bias.transpose();
  std::vector<int> to = max_weight_assignment(score);
  FfnWeights out{MatD(x.gate.rows(), x.gate.cols()), MatD(x.up.rows(), x.up.cols()), MatD(x.down.rows(), x.down.cols()),
                 VecD(x.gate_bias.size()), VecD(x.up_bias.size()), x.down_bias};
  for (size_t a = 0; a < to.size(); ++a) {
    auto i = static_cast<Eigen::Index>(a);
    out.gate.row(to[a]) = x.gate.row(i);
    out.up.row(to[a]) = x.up.row(i);
    out.down.col(to[a]) = x.down.col(i);
    if (biased) {
      out.gate_bias[to[a]] = x.gate_bias[i];
      out.up_bias[to[a]] = x.up_bias[i];
    }
  }
  return out;
}

MergeResult plan_merge_experts(const MergeSpec& s) {
  const ModelConfig& c = *s.config;
  const bool fused = c.family->expert_kind == ExpertKind::kClampedSwiGlu;  // gpt-oss
  if (!fused && find_pattern(*c.family, Role::kExpert, Proj::kGate) == nullptr)
    throw UnsupportedError(std::string(c.family->model_type) + ": no routed expert tensors to merge");
  if (s.fixed.empty() && (s.groups < 1 || s.groups > c.n_experts))
    throw UsageError("--groups " + std::to_string(s.groups) + " must be in [1, " + std::to_string(c.n_experts) + "]");
  if (s.uniform_weights == false && s.stats == nullptr && s.method != MergeMethod::kAverage)
    throw UsageError("usage-weighted merging needs calibration statistics: --stats FILE or --data FILE..., or pass --uniform-weights");
  MergeResult r;
  r.groups.resize(static_cast<size_t>(c.n_layers));
  ReduceSpec spec;
  spec.model = s.model;
  spec.config = &c;
  spec.dtype = s.dtype;
  spec.layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.is_moe_layer(l)) continue;
    bool fixed = l < static_cast<int>(s.fixed.size()) && !s.fixed[static_cast<size_t>(l)].empty();
    Groups g = fixed ? s.fixed[static_cast<size_t>(l)] : group_layer(s, l);
    LayerCells cells{l, std::vector<ExpertCell>(static_cast<size_t>(c.n_experts))};
    for (size_t j = 0; j < g.size(); ++j) {
      spec.layers[l].push_back({g[j], member_weights(s, l, g[j])});
      for (int m : g[j]) {
        cells.experts[m].new_index = static_cast<int>(j);
        if (s.stats && s.stats->experts[l].tokens > 0) {
          cells.experts[m].score = s.stats->experts[l].count[m] / s.stats->experts[l].tokens;
          cells.experts[m].has_score = true;
        }
      }
    }
    r.groups[l] = std::move(g);
    r.cells.push_back(std::move(cells));
  }
  const MergeSpec* spec_ptr = &s;
  if (fused) {
    // Used by gate_up_proj, gate_up_proj_bias, down_proj and down_proj_bias.
    auto merged = std::make_shared<SharedPerExpert<FfnWeights>>(4);
    spec.merge_fused = [merged, spec_ptr](int layer, const OutputExpert& e) {
      return merged->get(layer, e, [&] { return merge_fused_expert(*spec_ptr, layer, e); });
    };
    r.plan = plan_reduced_moe(spec);
    return r;
  }
  auto cache = std::make_shared<SharedPerExpert<std::vector<FfnWeights>>>(3);  // gate, up, down
  spec.merge = [cache, spec_ptr](int layer, const OutputExpert& e, Proj proj, const std::string& name, DType dtype) {
    OutputTensor t;
    t.name = name;
    t.dtype = dtype;
    const Family& f = *spec_ptr->config->family;
    const TensorInfo& first = spec_ptr->model->require_tensor(expert_tensor_name(f, layer, e.members[0], proj));
    t.shape = first.shape;
    t.whole = true;
    std::string members;
    for (int m : e.members) members += (members.empty() ? "" : ",") + std::to_string(m);
    bool subspace = spec_ptr->method == MergeMethod::kSubMoe && !spec_ptr->rank.full();
    t.source = std::string(subspace ? "subspace merge" : "weighted average") + " of experts " + members;
    t.produce = [cache, spec_ptr, layer, e, proj, dtype, subspace](int64_t, int64_t, std::byte* out) {
      auto ffn = cache->get(layer, e, [&] { return load_member_ffns(*spec_ptr, layer, e); });
      std::vector<MatD> mats;
      for (const auto& w : *ffn) mats.push_back(proj == Proj::kGate ? w.gate : proj == Proj::kUp ? w.up : w.down);
      MatD merged = merge_matrices(mats, e.weights, subspace ? &spec_ptr->rank : nullptr);
      from_f64(dtype, merged.data(), static_cast<size_t>(merged.size()), out);
    };
    return t;
  };
  r.plan = plan_reduced_moe(spec);
  return r;
}

}  // namespace moeforge
