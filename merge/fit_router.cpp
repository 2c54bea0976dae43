#include "merge/fit_router.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "engine/stats_file.hpp"
#include "merge/moe_config.hpp"
#include "merge/tensor_producers.hpp"

namespace moeforge {
namespace {

ModelConfig moe_of(const Checkpoint& model) {
  if (!model.has_config()) throw FormatError(model.label() + ": no config.json; hint: fit-router takes a Hugging Face MoE directory");
  ModelConfig c = resolve_config(model.config(), model.config_path().string());
  if (!c.is_moe())
    throw UnsupportedError(model.label() + ": a dense " + std::string(c.family->model_type) +
                           " model has no router to fit; hint: compose dense experts into an MoE with `moeforge compose --router ridge`");
  return c;
}

void check_sources(const FitRouterSpec& s, const ModelConfig& c) {
  if (!router_is_fitted(s.method)) throw UsageError(std::string("fit-router fits ridge or logistic routers, not ") + router_method_name(s.method));
  if (!(s.options.lambda > 0)) throw UsageError("--router-lambda must be > 0");
  const bool from_stats = !s.stats.empty();
  if (from_stats == !s.data.empty()) throw UsageError("fit-router: give one data file per expert (--data or --bytes), or --stats");
  if (!from_stats && static_cast<int>(s.data.size()) != c.n_experts)
    throw UsageError("fit-router: " + std::to_string(s.data.size()) + " data files for " + std::to_string(c.n_experts) +
                     " experts; give one per expert, in expert order");
  if (from_stats && s.method == RouterMethod::kLogistic)
    throw UsageError("--router logistic: logistic regression has no sufficient statistics to store; fit it from --data/--bytes, or use --router ridge");
  if (from_stats && s.measure_before) throw UsageError("--report and --plot measure routing on data: give --data/--bytes, not --stats");
  if (from_stats) {
    std::vector<bool> seen(static_cast<size_t>(c.n_experts), false);
    if (s.class_of_stats.size() != s.stats.size())
      throw UsageError("--stats-experts: " + std::to_string(s.class_of_stats.size()) + " expert indices for " + std::to_string(s.stats.size()) + " statistics files");
    for (size_t i = 0; i < s.stats.size(); ++i) {
      int e = s.class_of_stats[i];
      if (e < 0 || e >= c.n_experts)
        throw UsageError("--stats-experts: expert " + std::to_string(e) + " does not exist (the model has " + std::to_string(c.n_experts) + ")");
      seen[static_cast<size_t>(e)] = true;
      check_stats_match(s.stats[i], c, s.stats_paths[i]);
      if (!s.stats[i].router_gram)
        throw UsageError(s.stats_paths[i] + ": no router-input Gram matrices; hint: make it with `moeforge observe --router-gram`");
    }
    for (int e = 0; e < c.n_experts; ++e)
      if (!seen[static_cast<size_t>(e)]) throw UsageError("--stats: no statistics for expert " + std::to_string(e) + "; every expert needs data");
  }
}

}  // namespace

FitRouterResult plan_fit_router(const FitRouterSpec& s) {
  const Checkpoint& model = *s.model;
  ModelConfig c = moe_of(model);
  check_sources(s, c);
  FitRouterResult r;
  Plan& plan = r.plan;
  plan.config = model.config();
  std::vector<RouterSlot> slots;
  for (const TensorInfo* t : model.tensors()) {
    auto cls = classify_tensor(*c.family, t->name);
    if (!cls || cls->pattern->role != Role::kRouter) {
      plan.tensors.push_back(copy_tensor(*t, t->name, t->dtype));
      continue;
    }
    if (t->shape != Shape{c.n_experts, c.hidden})
      throw FormatError(where(model.label(), t->name) + "shape " + shape_string(t->shape) + ", config.json implies " + shape_string({c.n_experts, c.hidden}));
    auto rows = std::make_shared<std::vector<double>>(static_cast<size_t>(c.n_experts * c.hidden), 0.0);
    slots.push_back({cls->layer, rows});
    plan.tensors.push_back(from_values(rows, t->shape, t->name, t->dtype, std::string("router: ") + router_method_name(s.method) + " fit"));
  }
  if (slots.empty()) throw FormatError(model.label() + ": no router tensors found");
  plan.side_files = model.side_files();
  plan.inputs.push_back(model.path());
  std::vector<std::string> warnings;
  if (s.fit && !s.stats.empty()) {
    for (const auto& slot : slots) {
      const std::string what = "layer " + std::to_string(slot.layer) + " router";
      MatD rows = ridge_router(ridge_stats_from(s.stats, s.class_of_stats, c.n_experts, slot.layer), s.options, what, &warnings);
      std::copy(rows.data(), rows.data() + rows.size(), slot.rows->begin());
    }
  } else if (s.fit) {
    DataSet data = combine(s.data);
    if (s.measure_before) r.before = routing_accuracy(Engine(model, {.threads = s.threads}), data, one_class_per_expert(c.n_experts));
    RouterFitRequest request{s.method, s.options, one_class_per_expert(c.n_experts), s.threads};
    r.after = fit_routers(plan, s.label, slots, data, request, &warnings);
    for (const auto& a : r.after) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "layer %d router: top-1 routing accuracy %.4f on the data", a.layer, a.accuracy());
      plan.notes.push_back(buf);
    }
  }
  add_plan_notes(plan, model.config(), warnings);
  return r;
}

}  // namespace moeforge
