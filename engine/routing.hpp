// How an MoE layer picks its experts for each token, per router kind (model/architecture.hpp):
//   softmax          p = softmax(logits) over all experts, the k largest, renormalised when the
//                    family/config says so (Mixtral, Qwen-MoE, OLMoE)
//   sigmoid groups   s = sigmoid(logits); choice c = s + e_score_correction_bias (selection only);
//                    groups of E/n_group consecutive experts scored by the sum of their 2 best c;
//                    the topk_group best groups kept, the others' c set to 0 (as transformers does,
//                    not −inf); top-k of c; weights s[idx] (/ their sum + 1e-20 with norm_topk_prob)
//                    × routed_scaling_factor (DeepSeek-V3, Kimi-K2, Moonlight, GLM-4-MoE)
//   selected softmax logits += router bias; the k largest logits; weights = softmax over those k
//                    (gpt-oss)
// Chosen experts come out sorted by descending weight (ties: lower index). `probs` is the
// per-expert score used for soft-usage statistics: the softmax over all experts (gpt-oss: of the
// biased logits), the sigmoid for the sigmoid routers.
#pragma once
#include <cstdint>

#include "model/model_config.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct RouterWeights {
  Weight weight;      // [E, H]
  Weight bias;        // gpt-oss: [E], added to the logits
  Weight correction;  // DeepSeek/GLM e_score_correction_bias [E], selection only
};

RouterWeights load_router(const WeightSource& ckpt, const ModelConfig& c, int layer);

// Throws UnsupportedError for group settings transformers cannot run either (n_group not dividing
// the experts, groups of fewer than 2 experts, topk_group > n_group).
void check_routing(const ModelConfig& c);

// n tokens x[n, H] → logits [n, E] (with the router bias), probs [n, E], idx/weight [n, k].
void route_tokens(const ModelConfig& c, const RouterWeights& w, const float* x, int64_t n, float* logits, float* probs,
                  int32_t* idx, float* weight);

// The softmax router on given logits (ties: lower index).
void route(const float* logits, int64_t n, int n_experts, int k, bool renormalize, float* probs, int32_t* idx, float* weight);

}  // namespace moeforge
