// Feed-forward blocks: the dense SwiGLU MLP, down(silu(gate(x)) * up(x)), and the MoE block —
// router logits, softmax over all experts, top-k (renormalised when the family/config says so),
// the chosen experts' SwiGLU outputs weighted and summed, plus a shared expert scaled by
// sigmoid(shared_expert_gate(x)) where the family has one. Tokens go through in chunks so the
// intermediate activations stay bounded; every chunk is shown to the observer. Chunks are the
// batch's segments (text/batch.hpp), cut every chunk_tokens tokens from the segment's start, so a
// token's values depend only on its segment, not on the rest of the batch.
#pragma once
#include <utility>
#include <vector>

#include "model/model_config.hpp"
#include "text/batch.hpp"
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
// The same over many rows, in parallel blocks of kRowBlock rows counted from X.
void dense_mlp(const MlpWeights& w, const float* X, int64_t n, float* Y);
void dense_mlp(const MlpWeights& w, const Mat& X, Mat& Y);

// [begin, begin + n) token ranges: each segment of at most chunk_tokens tokens, a longer window cut
// every chunk_tokens tokens from its start.
std::vector<std::pair<int64_t, int64_t>> token_chunks(const Batch& batch, int64_t chunk_tokens);

// Routing of n tokens: probs = softmax(logits), the k largest (ties: lower index), weights
// renormalised to sum 1 when `renormalize`.
void route(const float* logits, int64_t n, int n_experts, int k, bool renormalize, float* probs, int32_t* idx, float* weight);

// out = MoE(X); `residual` is the stream before the block (for observers).
void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, const Batch& batch, int64_t chunk_tokens);

}  // namespace moeforge
