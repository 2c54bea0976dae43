// moeforge compose --expert A --expert B ... OUT: BTX composition of dense experts into an MoE.
#include <memory>

#include "cli/router_options.hpp"
#include "cli/checkpoint_source.hpp"
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
      {.name = "shared", .type = T::kChoice, .default_value = "uniform", .help = "non-FFN weights: uniform mean (BTX), weighted mean (--weights), or copied from --base",
       .choices = {"uniform", "weighted", "base"}},
      {.name = "weights", .type = T::kFloatList, .help = "one weight per expert for --shared weighted (normalised to sum 1)", .min = 0.0},
      {.name = "base", .type = T::kPath, .help = "the seed model: --shared base source, hidden-router model, default shared expert"},
      {.name = "shared-expert", .type = T::kPath, .help = "qwen2_moe: the model whose FFN becomes the shared expert (default: --base)"},
      {.name = "output-arch", .type = T::kChoice, .help = "target family (default: mixtral from llama/mistral, qwen2_moe from qwen2, qwen3_moe from qwen3)",
       .choices = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"}},
      {.name = "experts-per-token", .type = T::kInt, .default_value = "2", .help = "experts each token is routed to (capped at the expert count)", .min = 1.0},
      {.name = "pad-experts", .type = T::kFlag, .help = "zero-pad narrower FFNs to the widest (exact for SwiGLU)"},
      {.name = "norm-topk-prob", .type = T::kChoice, .default_value = "true", .help = "renormalise the top-k weights (families with norm_topk_prob)",
       .choices = {"true", "false"}},
      {.name = "expert-noise", .type = T::kFloatList, .help = "per expert: std of seeded noise added to its FFN weights (mergekit noise_scale)", .min = 0.0},
      {.name = "expert-down-scale", .type = T::kFloatList, .help = "per expert: factor on its down projection (mergekit residual_scale)"},
      {.name = "shared-gate", .type = T::kChoice, .default_value = "zero",
       .help = "qwen2_moe shared_expert_gate: zero, or router (like a router row, from one more --router-data file after the experts')",
       .choices = {"zero", "router"}},
  }, router_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    std::vector<std::unique_ptr<Checkpoint>> experts;
    ComposeSpec s;
    for (const auto& path : p.strings("expert")) {
      experts.push_back(open_checkpoint(ctx, path));
      s.experts.push_back(experts.back().get());
    }
    std::unique_ptr<Checkpoint> base, shared;
    if (p.has("base")) base = open_checkpoint(ctx, p.str("base"));
    if (p.has("shared-expert")) shared = open_checkpoint(ctx, p.str("shared-expert"));
    s.base = base.get();
    s.shared_expert = shared.get();
    s.shared = p.str("shared") == "uniform" ? SharedWeights::kUniform : p.str("shared") == "weighted" ? SharedWeights::kWeighted : SharedWeights::kBase;
    s.weights = p.numbers("weights");
    if (s.shared != SharedWeights::kWeighted && !s.weights.empty()) throw UsageError("--weights needs --shared weighted");
    s.output_arch = p.str("output-arch");
    s.experts_per_token = p.count("experts-per-token");
    s.pad_experts = p.flag("pad-experts");
    s.renormalize = p.str("norm-topk-prob") == "true";
    s.dtype = requested_dtype(p);
    s.expert_noise = p.numbers("expert-noise");
    s.expert_down_scale = p.numbers("expert-down-scale");
    s.shared_gate_from_router = p.str("shared-gate") == "router";
    int64_t vocab = experts[0]->has_config() ? experts[0]->config().value("vocab_size", int64_t{0}) : 0;
    s.router = router_init(p, vocab, experts[0]->path());
    Plan plan = plan_compose(s);
    plan.provenance = provenance(v, p);
    return write_output(plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
