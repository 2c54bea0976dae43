#include "merge/compose.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>

#include "core/error.hpp"
#include "formats/convert_plan.hpp"
#include "engine/plan_weights.hpp"
#include "merge/append_experts.hpp"
#include "merge/compatibility.hpp"
#include "merge/moe_config.hpp"
#include "merge/tensor_producers.hpp"

namespace moeforge {
namespace {

const TensorInfo& dense_ffn(const DenseInput& in, int layer, Proj proj) {
  return in.ckpt->require_tensor(expand(find_pattern(*in.config.family, Role::kFfn, proj)->pattern, layer));
}

std::vector<double> shared_weights(const ComposeSpec& s) {
  size_t n = s.experts.size();
  if (s.shared != SharedWeights::kWeighted) return std::vector<double>(n, 1.0 / static_cast<double>(n));
  if (s.weights.size() != n)
    throw UsageError("--weights: " + std::to_string(s.weights.size()) + " values for " + std::to_string(n) + " experts");
  double total = std::accumulate(s.weights.begin(), s.weights.end(), 0.0);
  for (double w : s.weights)
    if (w < 0) throw UsageError("--weights must not be negative");
  if (total <= 0) throw UsageError("--weights must not all be zero");
  std::vector<double> out;
  for (double w : s.weights) out.push_back(w / total);
  return out;
}

// The dtype new tensors (routers, gates, norms) get when none is requested: the experts' FFN dtype.
DType new_tensor_dtype(const ComposeSpec& s, const DenseInput& first) {
  return s.dtype ? *s.dtype : dense_ffn(first, 0, Proj::kGate).dtype;
}

}  // namespace

Plan plan_compose(const ComposeSpec& s, std::vector<LayerAccuracy>* accuracy) {
  if (s.moe) return plan_append(s, accuracy);
  if (s.experts.empty()) throw UsageError("compose needs at least one --expert");
  if (s.shared == SharedWeights::kKeep) throw UsageError("--shared keep needs --moe (the MoE whose shared weights are kept)");
  std::vector<DenseInput> experts;
  for (size_t i = 0; i < s.experts.size(); ++i) experts.push_back(dense_input(*s.experts[i], "--expert " + std::to_string(i)));
  for (size_t i = 1; i < experts.size(); ++i) check_fit(experts[0], experts[i], s.pad_experts);
  std::optional<DenseInput> base, shared_src;
  if (s.base) {
    base = dense_input(*s.base, "--base");
    check_fit(experts[0], *base, true);
  }
  if (s.shared == SharedWeights::kBase && !base) throw UsageError("--shared base needs --base PATH");
  const DenseInput& reference = base ? *base : experts[0];
  const std::string from(reference.config.family->model_type);
  std::string arch = s.output_arch.empty() ? default_moe_arch(from) : s.output_arch;
  const Family& target = require_family(arch, "--output-arch: ");
  if (!target.moe) throw UsageError("--output-arch " + arch + " is not an MoE family");

  MoeShape shape;
  shape.experts = static_cast<int>(experts.size());
  shape.experts_per_token = std::min<int>(s.experts_per_token.value_or(2), shape.experts);
  for (const auto& e : experts) shape.expert_width = std::max(shape.expert_width, e.config.intermediate);
  shape.renormalize = s.renormalize.value_or(true);
  if (!target.shared_ffn_key.empty()) {
    if (s.shared_expert) shared_src = dense_input(*s.shared_expert, "--shared-expert");
    else if (base) shared_src = base;
    else throw UsageError(arch + " has a shared expert: pass --shared-expert PATH or --base PATH (whose FFN becomes the shared expert)");
    check_fit(experts[0], *shared_src, true);
    shape.shared_width = shared_src->config.intermediate;
  }
  Plan plan;
  plan.config = moe_config(reference.ckpt->config(), target, shape, reference.ckpt->label());
  ModelConfig out = resolve_config(plan.config, "the composed config");

  std::vector<std::string> warnings;
  RouterModels models;
  for (const auto& e : experts) models.per_row.push_back(e.ckpt);
  models.base = base ? base->ckpt : nullptr;
  models.embedding = reference.ckpt;
  bool needs_base = s.router.method == RouterMethod::kHidden || s.router.method == RouterMethod::kMergekitHidden;
  if (needs_base && !base) throw UsageError(std::string("--router ") + router_method_name(s.router.method) + " runs the base model: pass --base PATH");
  if (s.shared_gate_from_router && target.shared_ffn_key.empty()) throw UsageError(arch + " has no shared expert gate to initialise");
  if (s.shared_gate_from_router && router_is_fitted(s.router.method))
    throw UsageError(std::string("--shared-gate router takes its row like embed/hidden/centroid routers; --router ") +
                     router_method_name(s.router.method) + " fits only the router");
  const int rows = shape.experts + (s.shared_gate_from_router ? 1 : 0);
  if (s.shared_gate_from_router) models.per_row.push_back(shared_src->ckpt);
  auto routers = std::make_shared<std::vector<std::vector<double>>>(init_routers(s.router, models, rows, out.n_layers, out.hidden, out.moe_layer, &warnings));
  for (auto& name_and_list : {std::pair{"--expert-noise", &s.expert_noise}, {"--expert-down-scale", &s.expert_down_scale}})
    if (!name_and_list.second->empty() && name_and_list.second->size() != experts.size())
      throw UsageError(std::string(name_and_list.first) + ": " + std::to_string(name_and_list.second->size()) + " values for " +
                       std::to_string(experts.size()) + " experts");

  std::vector<double> w = shared_weights(s);
  std::vector<RouterSlot> slots;
  DType fresh = new_tensor_dtype(s, experts[0]);
  for (const auto& e : expected_tensors(out)) {
    Role role = e.pattern->role;
    if (role == Role::kExpert) {
      const TensorInfo& src = dense_ffn(experts[static_cast<size_t>(e.expert)], e.layer, e.pattern->proj);
      DType dt = output_dtype(s.dtype, src.dtype);
      Shape want = e.pattern->proj == Proj::kDown ? Shape{out.hidden, shape.expert_width} : Shape{shape.expert_width, out.hidden};
      double noise = s.expert_noise.empty() ? 0.0 : s.expert_noise[static_cast<size_t>(e.expert)];
      double scale = s.expert_down_scale.empty() || e.pattern->proj != Proj::kDown ? 1.0 : s.expert_down_scale[static_cast<size_t>(e.expert)];
      bool adjusted = noise != 0 || scale != 1.0;
      DType made = adjusted ? DType::kF32 : dt;  // adjusted in float32, rounded once
      OutputTensor t = src.shape == want ? copy_tensor(src, e.name, made) : zero_padded(src, e.name, made, want);
      plan.tensors.push_back(adjusted ? with_noise(std::move(t), dt, noise, s.router.seed, scale) : std::move(t));
    } else if (role == Role::kSharedExpert) {
      const TensorInfo& src = dense_ffn(*shared_src, e.layer, e.pattern->proj);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    } else if (role == Role::kRouter) {
      const auto& all = (*routers)[static_cast<size_t>(e.layer)];
      auto values = std::make_shared<std::vector<double>>(all.begin(), all.begin() + shape.experts * out.hidden);
      slots.push_back({e.layer, values});
      plan.tensors.push_back(from_values(values, {shape.experts, out.hidden}, e.name, fresh,
                                         std::string("router: ") + router_method_name(s.router.method)));
    } else if (role == Role::kSharedExpertGate && s.shared_gate_from_router) {
      const auto& all = (*routers)[static_cast<size_t>(e.layer)];
      auto values = std::make_shared<const std::vector<double>>(all.end() - out.hidden, all.end());
      plan.tensors.push_back(from_values(values, {1, out.hidden}, e.name, fresh, std::string("shared gate: ") + router_method_name(s.router.method)));
    } else if (role == Role::kSharedExpertGate) {
      plan.tensors.push_back(filled(0.0, {1, out.hidden}, e.name, fresh, "zeros: sigmoid(0) = 1/2 until trained"));
    } else if (role == Role::kAttention && reference.ckpt->find_tensor(e.name) == nullptr && e.name.size() > 5 &&
               e.name.compare(e.name.size() - 5, 5, ".bias") == 0) {
      // qwen2_moe always has q/k/v biases; from a bias-free llama they are zeros (the same function).
      int64_t width = e.name.find(".q_proj.") != std::string::npos ? out.n_heads * out.head_dim : out.n_kv_heads * out.head_dim;
      plan.tensors.push_back(filled(0.0, {width}, e.name, fresh, "zeros: the inputs have no bias"));
    } else if (role == Role::kQkNorm && reference.ckpt->find_tensor(e.name) == nullptr) {
      Shape qk = {(e.name.find("q_norm") != std::string::npos ? out.n_heads : out.n_kv_heads) * out.head_dim};
      plan.tensors.push_back(filled(1.0, qk, e.name, fresh, "ones: new q/k norm (changes attention until trained)"));
      if (e.layer == 0 && e.name.find("q_norm") != std::string::npos)
        warnings.push_back(arch + " normalises q and k; the inputs have no such norms, so unit-weight norms are added and the "
                                  "attention no longer computes what the experts computed (train before use)");
    } else if (s.shared == SharedWeights::kBase) {
      const TensorInfo& src = base->ckpt->require_tensor(e.name);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    } else {
      std::vector<const TensorInfo*> sources;
      for (const auto& x : experts) sources.push_back(&x.ckpt->require_tensor(e.name));
      OutputTensor t = weighted_average(sources, w, e.name, output_dtype(s.dtype, sources[0]->dtype));
      t.source = (s.shared == SharedWeights::kUniform ? "mean of " : "weighted mean of ") + std::to_string(sources.size()) + " experts";
      plan.tensors.push_back(std::move(t));
    }
  }
  for (const TensorInfo* t : reference.ckpt->tensors()) {  // every input tensor must have a home
    auto cls = classify_tensor(*reference.config.family, t->name);
    bool ffn = cls && cls->pattern->role == Role::kFfn;
    bool written = std::any_of(plan.tensors.begin(), plan.tensors.end(), [&](const OutputTensor& o) { return o.name == t->name; });
    if (!ffn && !written) throw UnsupportedError(where(reference.ckpt->label(), t->name) + "has no place in a " + arch + " checkpoint");
  }
  set_torch_dtype(plan.config, plan);
  plan.side_files = reference.ckpt->side_files();
  for (const auto& e : experts) plan.inputs.push_back(e.ckpt->path());
  if (base) plan.inputs.push_back(base->ckpt->path());
  settle_routers(plan, s, slots, one_class_per_expert(shape.experts), accuracy, &warnings);
  add_plan_notes(plan, reference.ckpt->config(), warnings);
  return plan;
}

void settle_routers(Plan& plan, const ComposeSpec& s, const std::vector<RouterSlot>& slots, const std::vector<int>& class_of_expert,
                    std::vector<LayerAccuracy>* accuracy, std::vector<std::string>* warnings) {
  const bool fitted = router_is_fitted(s.router.method);
  if (!fitted && accuracy == nullptr) return;
  const size_t classes = static_cast<size_t>(1 + *std::max_element(class_of_expert.begin(), class_of_expert.end()));
  if (s.router.positive.size() != classes)
    throw UsageError((fitted ? std::string("--router ") + router_method_name(s.router.method) + " fits from"
                             : std::string("--report and --plot measure routing accuracy on")) +
                     " one data file per expert (--router-data/--router-bytes, " + std::to_string(classes) + "), found " +
                     std::to_string(s.router.positive.size()));
  DataSet data = combine(s.router.positive);
  RouterFitRequest r{s.router.method, s.router.fit, class_of_expert, s.router.threads};
  std::vector<LayerAccuracy> measured;
  if (fitted) {
    measured = fit_routers(plan, s.label, slots, data, r, warnings);
  } else {
    PlanWeights weights(plan, s.label);
    measured = routing_accuracy(Engine(weights, {.threads = s.router.threads}), data, class_of_expert);
  }
  for (const auto& a : measured) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "layer %d router: top-1 routing accuracy %.4f on the router data", a.layer, a.accuracy());
    plan.notes.push_back(buf);
  }
  if (accuracy) *accuracy = std::move(measured);
}
}  // namespace moeforge
