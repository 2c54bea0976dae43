// Feed-forward blocks: the dense SwiGLU MLP, down(silu(gate(x)) * up(x)), and the MoE block —
// router logits, softmax over all experts, top-k (renormalised when the family/config says so),
// the chosen experts' SwiGLU outputs weighted and summed, plus a shared expert scaled by
// sigmoid(shared_expert_gate(x)) where the family has one. Tokens go through in chunks so the
// intermediate activations stay bounded; every chunk is shown to the observer.
#pragma once
#include <vector>

#include "model/model_config.hpp"
#include "engine/observer.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct MlpWeights {
  Weight gate, up, down;
  bool empty() const { return gate.empty(); }
};

struct MoeWeights {
  Weight router;
  std::vector<MlpWeights> experts;
  MlpWeights shared;
  Weight shared_gate;
};

MlpWeights load_dense_mlp(const WeightSource& ckpt, const ModelConfig& c, int layer);
MoeWeights load_moe(const WeightSource& ckpt, const ModelConfig& c, int layer);

// Y[n, hidden] = MLP(X[n, hidden]), on the calling thread.
void mlp_rows(const MlpWeights& w, const float* X, int64_t n, float* Y);
// The same over many rows, in parallel chunks.
void dense_mlp(const MlpWeights& w, const Mat& X, Mat& Y);

// Routing of n tokens: probs = softmax(logits), the k largest (ties: lower index), weights
// renormalised to sum 1 when `renormalize`.
void route(const float* logits, int64_t n, int n_experts, int k, bool renormalize, float* probs, int32_t* idx, float* weight);

// out = MoE(X); `residual` is the stream before the block (for observers).
void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, int64_t chunk_tokens);

}  // namespace moeforge
