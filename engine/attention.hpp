// Self-attention of one layer over a batch of windows (Llama/Mistral/Qwen2/Qwen3/OLMoE style):
// q/k/v projections (optional biases), optional q/k RMSNorm (per head or full width), rotate-half
// RoPE, grouped-query attention with a causal (optionally sliding-window) mask, eager softmax in
// float32, o_proj. Windows are processed in groups of about `group_tokens` tokens.
#pragma once
#include "text/batch.hpp"
#include "model/model_config.hpp"
#include "engine/rope.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct AttentionWeights {
  Weight q, k, v, o;
  Weight q_bias, k_bias, v_bias, o_bias;
  Weight q_norm, k_norm;
};

AttentionWeights load_attention(const WeightSource& ckpt, const ModelConfig& c, int layer);

// out[N, hidden] = attention(X[N, hidden]) for every window of the batch.
void attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope, const Batch& batch, int layer,
               const Mat& X, Mat& out, int64_t group_tokens);

}  // namespace moeforge
