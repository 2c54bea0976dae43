// Feed-forward blocks: the dense SwiGLU MLP, down(silu(gate(x)) * up(x)), and the MoE block —
// routing (routing.hpp), the chosen experts' outputs weighted and summed, plus the shared
// expert(s): scaled by sigmoid(shared_expert_gate(x)) for qwen2_moe, always on for DeepSeek/GLM.
// gpt-oss experts have biases and the clamped SwiGLU: g = min(g, L), u = clamp(u, −L, L),
// (u + 1) · g · sigmoid(1.702 g), L = swiglu_limit (7). Tokens go through in chunks so the
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

// out = MoE(X); `residual` is the stream before the block (for observers).
void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, const Batch& batch, int64_t chunk_tokens);

}  // namespace moeforge
