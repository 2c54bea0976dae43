// What the forward engine shows to whoever watches a pass: activations at named sites for all
// tokens of a layer, every MoE chunk with its routing and expert outputs, and per-window logits.
// The default implementations ignore everything, so an observer overrides only what it needs.
#pragma once
#include <cstdint>

#include "engine/weights.hpp"

namespace moeforge {

enum class Site {
  kEmbed,        // embedding lookup [N, hidden]
  kLayerInput,   // residual stream entering layer l
  kAttnOut,      // attention output after o_proj, before the residual add
  kRouterInput,  // post_attention_layernorm output (the router's input)
  kMlpOut,       // MLP or MoE block output (shared expert included), before the residual add
  kLayerOut,     // residual stream after layer l
  kFinalNorm,    // final RMSNorm output
};

// One chunk of consecutive tokens through one MoE layer. Rows are tokens token_begin + i.
struct MoeChunk {
  int layer = 0;
  int64_t token_begin = 0, n = 0, hidden = 0;
  int n_experts = 0, k = 0;
  const float* input = nullptr;          // [n, hidden] router input
  const float* residual = nullptr;       // [n, hidden] residual stream before the block (h)
  const float* router_logits = nullptr;  // [n, E] before softmax/sigmoid
  const float* probs = nullptr;          // [n, E] softmax over all experts
  const int32_t* topk_idx = nullptr;     // [n, k] chosen experts, by descending weight
  const float* topk_weight = nullptr;    // [n, k] the weights the forward pass multiplies by
  const float* expert_out = nullptr;     // [n, k, hidden] unweighted outputs of the chosen experts
  const float* routed_out = nullptr;     // [n, hidden] Σ weight × expert output (no shared expert)
  const float* block_out = nullptr;      // [n, hidden] the block's output, shared expert included
  const float* all_expert_out = nullptr; // every expert on every token, if asked: row (e * all_stride + i)
  int64_t all_stride = 0;                // rows per expert in all_expert_out

  // The rows [from, to) of this chunk as a chunk of its own.
  MoeChunk slice(int64_t from, int64_t to) const;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void activation(Site site, int layer, const Mat& rows) {}
  virtual void moe(const MoeChunk& chunk) {}
  virtual bool wants_all_expert_outputs() const { return false; }
  virtual bool wants_logits() const { return false; }
  // Called concurrently for different windows; logits is [length, vocab].
  virtual void logits(size_t window, const float* logits, int64_t length, int64_t vocab) {}
};

}  // namespace moeforge
