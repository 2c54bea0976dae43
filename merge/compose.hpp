// BTX composition: dense experts branched from one seed model become one MoE. Expert i's FFN
// becomes expert i of every MoE layer (bit-exact copies, zero-padded when --pad-experts); every
// other tensor (attention, norms, embeddings, lm_head) is averaged over the experts (uniform or
// weighted, float64 accumulation, one rounding) or copied from a base model; the router is
// initialised as chosen (router_init.hpp); qwen2_moe also gets a shared expert (the base's FFN or
// a given model's) with a zero shared_expert_gate (the shared expert contributes half its output
// until trained). The config is the target family's, carrying over every field that still applies.
// Fitted routers (ridge, logistic) are fitted in the composed MoE itself (router_fit_pass.hpp).
// With `moe`, the experts are appended to an existing MoE instead (append_experts.hpp).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/plan.hpp"
#include "merge/router_fit_pass.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

enum class SharedWeights { kUniform, kWeighted, kBase, kKeep };

struct ComposeSpec {
  std::vector<const Checkpoint*> experts;
  SharedWeights shared = SharedWeights::kUniform;
  std::vector<double> weights;                // kWeighted: one per expert, normalised to sum 1
  const Checkpoint* base = nullptr;           // kBase source; default shared expert; hidden-router model
  const Checkpoint* shared_expert = nullptr;  // qwen2_moe: whose FFN becomes the shared expert
  std::string output_arch;                    // empty: mixtral / qwen2_moe / qwen3_moe by input family
  std::optional<int> experts_per_token;      // default 2 (with `moe`: the MoE's)
  bool pad_experts = false;
  std::optional<bool> renormalize;           // norm_topk_prob where the family has it; default true (with `moe`: the MoE's)
  std::optional<DType> dtype;
  RouterInit router;
  // mergekit-moe's per-expert options: N(0, noise²) added to the expert's FFN weights (seeded by
  // router.seed), then its down projection multiplied by down_scale (residual_scale). Empty: none.
  std::vector<double> expert_noise, expert_down_scale;
  // qwen2_moe: initialise shared_expert_gate like a router row from one more data file (the last)
  // instead of zeros.
  bool shared_gate_from_router = false;
  // Append the experts to this MoE (shared weights kept unless `shared` says otherwise).
  const Checkpoint* moe = nullptr;
  std::string label = "the composed MoE";  // names the output in messages
};

// With `accuracy`, the routing accuracy of the composed MoE on the router data is measured too
// (fitted routers: while fitting; other data-driven routers: one more pass over the data).
Plan plan_compose(const ComposeSpec& spec, std::vector<LayerAccuracy>* accuracy = nullptr);

// The last step of planning a composed MoE's routers: fitted routers are fitted into their slots
// (one data file per class), and the routing accuracy is measured when asked; notes go to the plan.
void settle_routers(Plan& plan, const ComposeSpec& spec, const std::vector<RouterSlot>& slots, const std::vector<int>& class_of_expert,
                    std::vector<LayerAccuracy>* accuracy, std::vector<std::string>* warnings);

}  // namespace moeforge
