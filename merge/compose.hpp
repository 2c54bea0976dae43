// BTX composition: dense experts branched from one seed model become one MoE. Expert i's FFN
// becomes expert i of every MoE layer (bit-exact copies, zero-padded when --pad-experts); every
// other tensor (attention, norms, embeddings, lm_head) is averaged over the experts (uniform or
// weighted, float64 accumulation, one rounding) or copied from a base model; the router is
// initialised as chosen (router_init.hpp); qwen2_moe also gets a shared expert (the base's FFN or
// a given model's) with a zero shared_expert_gate (the shared expert contributes half its output
// until trained). The config is the target family's, carrying over every field that still applies.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/plan.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

enum class SharedWeights { kUniform, kWeighted, kBase };

struct ComposeSpec {
  std::vector<const Checkpoint*> experts;
  SharedWeights shared = SharedWeights::kUniform;
  std::vector<double> weights;                // kWeighted: one per expert, normalised to sum 1
  const Checkpoint* base = nullptr;           // kBase source; default shared expert; hidden-router model
  const Checkpoint* shared_expert = nullptr;  // qwen2_moe: whose FFN becomes the shared expert
  std::string output_arch;                    // empty: mixtral / qwen2_moe / qwen3_moe by input family
  int experts_per_token = 2;
  bool pad_experts = false;
  bool renormalize = true;                    // norm_topk_prob where the family has it
  std::optional<DType> dtype;
  RouterInit router;
  // mergekit-moe's per-expert options: N(0, noise²) added to the expert's FFN weights (seeded by
  // router.seed), then its down projection multiplied by down_scale (residual_scale). Empty: none.
  std::vector<double> expert_noise, expert_down_scale;
  // qwen2_moe: initialise shared_expert_gate like a router row from one more data file (the last)
  // instead of zeros.
  bool shared_gate_from_router = false;
};

Plan plan_compose(const ComposeSpec& spec);

}  // namespace moeforge
