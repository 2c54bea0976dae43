// moeforge compose --expert A --expert B ... OUT: BTX composition of dense experts into an MoE.
#include <memory>

#include "cli/router_options.hpp"
#include "cli/checkpoint_source.hpp"
#include "cli/plot_output.hpp"
#include "cli/router_plot.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "core/error.hpp"
#include "merge/compose.hpp"

namespace moeforge {

Verb compose_verb() {
  using T = ParamType;
  Verb v;
  v.name = "compose";
  v.description = "compose dense experts into an MoE (BTX): FFNs become experts, other weights are averaged, routers initialised";
  v.params = with(with(with({
      {.name = "output", .type = T::kPath, .help = "directory to write, or a .gguf file", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "expert", .type = T::kPathList, .help = "a dense expert model (repeat; order = expert index)", .required = true},
      {.name = "moe", .type = T::kPath, .help = "an existing MoE to append the --expert models to (as experts E, E+1, ...)"},
      {.name = "shared", .type = T::kChoice,
       .help = "non-FFN weights: uniform mean (BTX; the default), weighted mean (--weights), copied from --base, or kept from --moe (its default)",
       .choices = {"uniform", "weighted", "base", "keep"}},
      {.name = "weights", .type = T::kFloatList, .help = "one weight per expert for --shared weighted (normalised to sum 1)", .min = 0.0},
      {.name = "base", .type = T::kPath, .help = "the seed model: --shared base source, hidden-router model, default shared expert"},
      {.name = "shared-expert", .type = T::kPath, .help = "qwen2_moe: the model whose FFN becomes the shared expert (default: --base)"},
      {.name = "output-arch", .type = T::kChoice, .help = "target family (default: mixtral from llama/mistral, qwen2_moe from qwen2, qwen3_moe from qwen3)",
       .choices = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"}},
      {.name = "experts-per-token", .type = T::kInt, .help = "experts each token is routed to, capped at the expert count (default 2; with --moe the MoE's)", .min = 1.0},
      {.name = "pad-experts", .type = T::kFlag, .help = "zero-pad narrower FFNs to the widest (exact for SwiGLU)"},
      {.name = "norm-topk-prob", .type = T::kChoice, .help = "renormalise the top-k weights, families with norm_topk_prob (default true; with --moe the MoE's)",
       .choices = {"true", "false"}},
      {.name = "expert-noise", .type = T::kFloatList, .help = "per expert: std of seeded noise added to its FFN weights (mergekit noise_scale)", .min = 0.0},
      {.name = "expert-down-scale", .type = T::kFloatList, .help = "per expert: factor on its down projection (mergekit residual_scale)"},
      {.name = "shared-gate", .type = T::kChoice, .default_value = "zero",
       .help = "qwen2_moe shared_expert_gate: zero, or router (like a router row, from one more --router-data file after the experts')",
       .choices = {"zero", "router"}},
      {.name = "report", .type = T::kPath, .help = "write each MoE layer's top-1 routing accuracy on the router data as JSON",
       .affects_output = false, .role = PathRole::kOutputFile},
      {.name = "plot", .type = T::kPath, .help = "write an SVG bar chart of each MoE layer's top-1 routing accuracy on the router data",
       .affects_output = false, .role = PathRole::kOutputFile},
  }, router_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    std::vector<std::unique_ptr<Checkpoint>> experts;
    ComposeSpec s;
    for (const auto& path : p.strings("expert")) {
      experts.push_back(open_checkpoint(ctx, path));
      s.experts.push_back(experts.back().get());
    }
    std::unique_ptr<Checkpoint> base, shared, moe;
    if (p.has("base")) base = open_checkpoint(ctx, p.str("base"));
    if (p.has("moe")) moe = open_checkpoint(ctx, p.str("moe"));
    s.moe = moe.get();
    s.label = p.str("output");
    if (p.has("shared-expert")) shared = open_checkpoint(ctx, p.str("shared-expert"));
    s.base = base.get();
    s.shared_expert = shared.get();
    const std::string shared_mode = p.has("shared") ? p.str("shared") : moe ? "keep" : "uniform";
    s.shared = shared_mode == "uniform"    ? SharedWeights::kUniform
               : shared_mode == "weighted" ? SharedWeights::kWeighted
               : shared_mode == "base"     ? SharedWeights::kBase
                                           : SharedWeights::kKeep;
    s.weights = p.numbers("weights");
    if (s.shared != SharedWeights::kWeighted && !s.weights.empty()) throw UsageError("--weights needs --shared weighted");
    s.output_arch = p.str("output-arch");
    if (p.has("experts-per-token")) s.experts_per_token = p.count("experts-per-token");
    s.pad_experts = p.flag("pad-experts");
    if (p.has("norm-topk-prob")) s.renormalize = p.str("norm-topk-prob") == "true";
    s.dtype = requested_dtype(p);
    s.expert_noise = p.numbers("expert-noise");
    s.expert_down_scale = p.numbers("expert-down-scale");
    s.shared_gate_from_router = p.str("shared-gate") == "router";
    const Checkpoint& reference = moe ? *moe : *experts[0];
    int64_t vocab = reference.has_config() ? reference.config().value("vocab_size", int64_t{0}) : 0;
    s.router = router_init(p, vocab, reference.path());
    std::vector<LayerAccuracy> accuracy;
    const bool measure = p.has("report") || p.has("plot");
    Plan plan = plan_compose(s, measure ? &accuracy : nullptr);
    if (p.has("plot"))
      plan.extra_files[output_path(p.str("plot"))] =
          router_plot_svg("compose: routing accuracy per layer", router_method_name(s.router.method), accuracy, {},
                          static_cast<int>(s.router.positive.size()), plot_metadata(v, p));
    if (p.has("report")) plan.extra_files[output_path(p.str("report"))] = router_report_json("compose", s.router.method, s.router.fit, data_paths(s.router.positive), accuracy, {}).dump(2) + "\n";
    plan.provenance = provenance(v, p);
    return write_output(plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
