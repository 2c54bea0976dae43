// Self-attention of one layer over a batch of windows (Llama/Mistral/Qwen2/Qwen3/OLMoE/GLM-4-MoE/
// gpt-oss style): q/k/v projections (optional biases), optional q/k RMSNorm (per head or full
// width), rotate-half RoPE on the first rotary_dim dims of each head, grouped-query attention with a
// causal (optionally sliding-window) mask and optional per-head sinks, eager softmax in float32,
// o_proj (optional bias). Windows are processed in groups of about `group_tokens` tokens.
// attend_head() is the scaled dot-product core shared with multi-head latent attention.
#pragma once
#include "core/error.hpp"
#include "text/batch.hpp"
#include "model/model_config.hpp"
#include "engine/rope.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct AttentionWeights {
  Weight q, k, v, o;
  Weight q_bias, k_bias, v_bias, o_bias;
  Weight q_norm, k_norm;
  Weight sinks;  // gpt-oss: one logit per head
};

AttentionWeights load_attention(const WeightSource& ckpt, const ModelConfig& c, int layer);

// out[N, hidden] = attention(X[N, hidden]) for every window of the batch.
void attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope, const Batch& batch, int layer,
               const Mat& X, Mat& out, int64_t group_tokens);

// One head of one window: T queries and keys of qk_dim values, values of v_dim, rows `*_stride`
// floats apart; O = softmax(scale · Q·Kᵀ, causal, window) · V. A sink (may be null) joins each
// row's softmax as a key without value.
struct HeadSlices {
  const float* q;
  const float* k;
  const float* v;
  float* o;
  int64_t q_stride, k_stride, v_stride, o_stride;
};
void attend_head(const HeadSlices& h, int64_t T, int64_t qk_dim, int64_t v_dim, float scale, int window, const float* sink, Mat& scores);

// The batch's segments (consecutive windows of at most group_tokens tokens, text/batch.hpp), so a
// token's values depend only on its segment: calls fn(first, last, begin, n) for windows
// [first, last) covering the rows [begin, begin + n).
template <class Fn>
void for_each_window_group(const Batch& batch, int64_t group_tokens, Fn fn) {
  for (const WindowRange& seg : segment_windows(batch, {0, batch.windows.size()}, group_tokens)) {
    const int64_t begin = batch.windows[seg.first].offset;
    int64_t n = 0;
    for (size_t wi = seg.first; wi < seg.last; ++wi) {
      if (batch.windows[wi].offset != begin + n) throw Error(ExitCode::kInternal, "batch windows are not contiguous");
      n += batch.windows[wi].length;
    }
    fn(seg.first, seg.last, begin, n);
  }
}

}  // namespace moeforge
