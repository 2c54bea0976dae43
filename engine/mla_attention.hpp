// Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2, Moonlight) as transformers computes it:
//   q  = q_proj(x), or q_b_proj(RMSNorm(q_a_proj(x))) with q_lora_rank   per head [nope | rope]
//   c  = kv_a_proj_with_mqa(x) = [latent (kv_lora_rank) | k_rope (one key shared by all heads)]
//   kv = kv_b_proj(RMSNorm(latent))                                      per head [k_nope | v]
// Both latent norms use eps 1e-6 (the class default), not rms_norm_eps. RoPE turns the rope parts
// (consecutive pairs with rope_interleave, else rotate-half), scores are scaled by
// (nope + rope)^-1/2, times mscale(factor, mscale_all_dim)² under YaRN; causal softmax; o_proj.
#pragma once
#include "text/batch.hpp"
#include "model/model_config.hpp"
#include "engine/rope.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct MlaWeights {
  Weight q, q_a, q_a_norm, q_b;  // q alone, or the three of q_lora_rank
  Weight kv_a, kv_a_norm, kv_b, o;
  Weight q_a_bias, kv_a_bias, o_bias;  // attention_bias
};

MlaWeights load_mla(const WeightSource& ckpt, const ModelConfig& c, int layer);

// The softmax scale of MLA scores for this config.
float mla_softmax_scale(const ModelConfig& c);

// out[N, hidden] = MLA(X[N, hidden]) for every window of the batch.
void mla_attention(const ModelConfig& c, const MlaWeights& w, const Rope& rope, const Batch& batch, const Mat& X, Mat& out,
                   int64_t group_tokens);

}  // namespace moeforge
