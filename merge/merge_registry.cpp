#include "merge/merge_registry.hpp"

#include "core/strings.hpp"

namespace moeforge {
namespace {

MergeParam weight() { return {.name = "weight", .per_model = true, .required = true, .help = "the model's weight"}; }
MergeParam density() {
  return {.name = "density", .per_model = true, .default_value = 1.0, .help = "fraction of the task vector kept, in (0, 1]"};
}
MergeParam flag(const std::string& name, bool value, const std::string& help) {
  return {.name = name, .default_value = value ? 1.0 : 0.0, .boolean = true, .help = help};
}
MergeParam number(const std::string& name, std::optional<double> value, const std::string& help) {
  return {.name = name, .required = !value, .default_value = value, .help = help};
}

// One member of the generalized task arithmetic family (merge_methods/generalized_task_arithmetic.py).
MergeMethodInfo gta(const std::string& name, Sparsify s, bool consensus, bool normalize, bool rescale, const std::string& summary) {
  MergeMethodInfo m{.name = name, .base = BaseRule::kRequired, .summary = summary, .gta = true, .sparsify = s,
                    .sign_consensus = consensus, .random = s == Sparsify::kRandom || s == Sparsify::kDella};
  m.params = {flag("int8_mask", false, "no numeric effect (mergekit's mask dtype)"),
              flag("normalize", normalize, "divide the mixed delta by the sum of the weights (per element under sign consensus)"),
              flag("rescale", rescale, "rescale each sparsified task vector to the L1 norm it had before sparsification"),
              number("lambda", 1.0, "factor on the mixed delta"), weight()};
  m.params.push_back(density());  // task_arithmetic takes it too, without effect
  if (s == Sparsify::kMagnitudeOutliers)
    m.params.push_back({.name = "gamma", .per_model = true, .default_value = 0.01, .help = "fraction of the largest magnitudes removed"});
  if (s == Sparsify::kDella)
    m.params.push_back({.name = "epsilon", .per_model = true, .default_value = 0.15,
                        .help = "keep probabilities range over density ± epsilon by magnitude rank"});
  return m;
}

std::vector<MergeMethodInfo> build() {
  std::vector<MergeMethodInfo> v;
  v.push_back({.name = "linear", .base = BaseRule::kAsInput,
               .params = {flag("normalize", true, "divide by the sum of the weights"), weight()},
               .summary = "weighted sum of the models"});
  v.push_back({.name = "slerp", .base = BaseRule::kRequired,
               .params = {number("t", std::nullopt, "interpolation position: 0 = base_model, 1 = the other model")},
               .summary = "spherical interpolation between base_model and one other model (each tensor one vector)"});
  v.push_back({.name = "nuslerp", .base = BaseRule::kOptional,
               .params = {flag("nuslerp_row_wise", false, "with nuslerp_flatten false: vectors along axis 0 (columns)"),
                          flag("nuslerp_flatten", true, "each tensor is one vector"), weight()},
               .summary = "spherical interpolation of two models (of their task vectors with base_model), t = w2 / (w1 + w2)"});
  v.push_back({.name = "multislerp", .base = BaseRule::kOptional,
               .params = {flag("normalize_weights", true, "divide the weights by their sum"), number("eps", 1e-8, "numerical guard"), weight()},
               .summary = "barycentric interpolation of any number of models on the hypersphere"});
  v.push_back({.name = "karcher", .base = BaseRule::kAsInput,
               .params = {number("max_iter", 10.0, "iterations"), number("tol", 1e-5, "convergence tolerance")},
               .summary = "Riemannian (Karcher) mean of the models' directions, scaled by their mean norm"});
  v.push_back(gta("task_arithmetic", Sparsify::kNone, false, false, false, "base + Σ weight × (model − base)"));
  v.push_back(gta("ties", Sparsify::kMagnitude, true, true, false, "top-k magnitude pruning of task vectors + sign election"));
  v.push_back(gta("dare_linear", Sparsify::kRandom, false, false, true, "random pruning of task vectors (Bernoulli(density)) + L1 rescale"));
  v.push_back(gta("dare_ties", Sparsify::kRandom, true, false, true, "DARE pruning + sign election"));
  v.push_back(gta("breadcrumbs", Sparsify::kMagnitudeOutliers, false, false, false, "drop the smallest and the gamma largest magnitudes"));
  v.push_back(gta("breadcrumbs_ties", Sparsify::kMagnitudeOutliers, true, false, false, "breadcrumbs + sign election"));
  v.push_back(gta("della", Sparsify::kDella, true, true, true, "magnitude-ranked random pruning (MAGPRUNE) + sign election"));
  v.push_back(gta("della_linear", Sparsify::kDella, false, false, true, "MAGPRUNE without sign election"));
  v.push_back({.name = "sce", .base = BaseRule::kRequired,
               .params = {flag("int8_mask", false, "no numeric effect"),
                          number("select_topk", 1.0, "fraction of positions kept, by variance across the models")},
               .summary = "select by variance, weight by mean square, erase minority signs (weights are ignored)"});
  v.push_back({.name = "model_stock", .base = BaseRule::kRequired,
               .params = {flag("filter_wise", false, "one interpolation ratio per row instead of per tensor")},
               .summary = "interpolate the models' mean towards base_model by their task vectors' mean cosine"});
  v.push_back({.name = "nearswap", .base = BaseRule::kRequired,
               .params = {number("t", std::nullopt, "similarity threshold: elements closer than t take the other model's value")},
               .summary = "take the other model's value where it is close to base_model"});
  v.push_back({.name = "arcee_fusion", .base = BaseRule::kRequired, .params = {},
               .summary = "take the other model's value where its importance (|Δ| × row KL) exceeds median + 1.5 IQR"});
  v.push_back({.name = "passthrough", .base = BaseRule::kAsInput,
               .params = {{.name = "scale", .per_model = true, .help = "factor on the tensor (unset: copied as is)"}},
               .summary = "copy one model's tensors (frankenmerges with slices)"});
  return v;
}

}  // namespace

const std::vector<MergeMethodInfo>& merge_methods() {
  static const std::vector<MergeMethodInfo> kMethods = build();
  return kMethods;
}

const MergeMethodInfo* find_merge_method(std::string_view name) {
  for (const auto& m : merge_methods())
    if (m.name == name) return &m;
  return nullptr;
}

std::string merge_method_names() {
  std::vector<std::string> names;
  for (const auto& m : merge_methods()) names.push_back(m.name);
  return join(names, ", ");
}

const MergeParam* find_param(const MergeMethodInfo& m, std::string_view name) {
  for (const auto& p : m.params)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace moeforge
