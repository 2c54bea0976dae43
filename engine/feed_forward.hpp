// Feed-forward blocks: the dense SwiGLU MLP, down(silu(gate(x)) * up(x)), and the MoE block —
// routing (routing.hpp), the chosen experts' outputs weighted and summed, plus the shared
// expert(s): scaled by sigmoid(shared_expert_gate(x)) for qwen2_moe, always on for DeepSeek/GLM.
// gpt-oss experts have biases and the clamped SwiGLU: g = min(g, L), u = clamp(u, −L, L),
// (u + 1) · g · sigmoid(1.702 g), L = swiglu_limit (7). Tokens go through in chunks so the
// intermediate activations stay bounded; every chunk is shown to the observer.
#pragma once
#include <vector>

#include "model/model_config.hpp"
#include "engine/observer.hpp"
#include "engine/routing.hpp"
#include "engine/weights.hpp"

namespace moeforge {

struct MlpWeights {
  Weight gate, up, down;
  Weight gate_bias, up_bias, down_bias;  // gpt-oss experts
  float clamp_limit = 0;                 // > 0: gpt-oss' clamped SwiGLU
  bool empty() const { return gate.empty(); }
};

struct MoeWeights {
  RouterWeights router;
  std::vector<MlpWeights> experts;
  MlpWeights shared;
  Weight shared_gate;
};

MlpWeights load_dense_mlp(const Checkpoint& ckpt, const ModelConfig& c, int layer);
MoeWeights load_moe(const Checkpoint& ckpt, const ModelConfig& c, int layer);

// Y[n, hidden] = MLP(X[n, hidden]), on the calling thread.
void mlp_rows(const MlpWeights& w, const float* X, int64_t n, float* Y);
// The same over many rows, in parallel chunks.
void dense_mlp(const MlpWeights& w, const Mat& X, Mat& Y);

// out = MoE(X); `residual` is the stream before the block (for observers).
void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, int64_t chunk_tokens);

}  // namespace moeforge
