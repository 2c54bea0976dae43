#include "engine/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/tensor_ops.hpp"

namespace moeforge {

AttentionWeights load_attention(const WeightSource& ckpt, const ModelConfig& c, int l) {
  int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim, h = c.hidden;
  auto name = [&](const char* suffix) { return "model.layers." + std::to_string(l) + ".self_attn." + suffix; };
  AttentionWeights w;
  w.q = load_weight(ckpt, name("q_proj.weight"), {q, h});
  w.k = load_weight(ckpt, name("k_proj.weight"), {kv, h});
  w.v = load_weight(ckpt, name("v_proj.weight"), {kv, h});
  w.o = load_weight(ckpt, name("o_proj.weight"), {h, q});
  if (c.attention_bias) {
    w.q_bias = load_weight(ckpt, name("q_proj.bias"), {q});
    w.k_bias = load_weight(ckpt, name("k_proj.bias"), {kv});
    w.v_bias = load_weight(ckpt, name("v_proj.bias"), {kv});
    w.o_bias = load_optional(ckpt, name("o_proj.bias"), {h});
  }
  if (c.qk_norm == QkNormKind::kPerHead) {
    w.q_norm = load_weight(ckpt, name("q_norm.weight"), {c.head_dim});
    w.k_norm = load_weight(ckpt, name("k_norm.weight"), {c.head_dim});
  } else if (c.qk_norm == QkNormKind::kFullWidth) {
    w.q_norm = load_weight(ckpt, name("q_norm.weight"), {q});
    w.k_norm = load_weight(ckpt, name("k_norm.weight"), {kv});
  }
  if (c.attention_sinks) w.sinks = load_weight(ckpt, name("sinks"), {c.n_heads});
  return w;
}

void attend_head(const HeadSlices& h, int64_t T, int64_t qk_dim, int64_t v_dim, float scale, int window, const float* sink, Mat& scores) {
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const Mat, 0, Stride> q(h.q, T, qk_dim, Stride(h.q_stride)), k(h.k, T, qk_dim, Stride(h.k_stride));
  Eigen::Map<const Mat, 0, Stride> v(h.v, T, v_dim, Stride(h.v_stride));
  Eigen::Map<Mat, 0, Stride> o(h.o, T, v_dim, Stride(h.o_stride));
  scores.resize(T, T);
  scores.noalias() = q * k.transpose();
  for (int64_t i = 0; i < T; ++i) {
    int64_t j0 = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
    float* row = scores.row(i).data();
    for (int64_t j = j0; j <= i; ++j) row[j] *= scale;
    if (sink != nullptr) {
      softmax_with_sink(row + j0, i - j0 + 1, *sink);
    } else {
      softmax(row + j0, i - j0 + 1);
    }
    std::fill(row, row + j0, 0.0f);
    std::fill(row + i + 1, row + T, 0.0f);
  }
  o.noalias() = scores * v;
}

void attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope, const Batch& batch, int layer,
               const Mat& X, Mat& out, int64_t group_tokens) {
  const int64_t hd = c.head_dim, nq = c.n_heads * hd, nkv = c.n_kv_heads * hd;
  const int group = c.n_heads / c.n_kv_heads;
  const int window = c.sliding_window[static_cast<size_t>(layer)].value_or(0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for_each_window_group(batch, group_tokens, [&](size_t first, size_t last, int64_t begin, int64_t n) {
    Mat Q(n, nq), K(n, nkv), V(n, nkv), O(n, nq);
    const float* x = X.data() + begin * c.hidden;
    linear(x, n, w.q, &w.q_bias, Q.data());
    linear(x, n, w.k, &w.k_bias, K.data());
    linear(x, n, w.v, &w.v_bias, V.data());
    if (c.qk_norm == QkNormKind::kPerHead) {
      rms_norm(Q.data(), n * c.n_heads, hd, w.q_norm.data(), c.rms_norm_eps);
      rms_norm(K.data(), n * c.n_kv_heads, hd, w.k_norm.data(), c.rms_norm_eps);
    } else if (c.qk_norm == QkNormKind::kFullWidth) {
      rms_norm(Q.data(), n, nq, w.q_norm.data(), c.rms_norm_eps);
      rms_norm(K.data(), n, nkv, w.k_norm.data(), c.rms_norm_eps);
    }
    const int64_t n_windows = static_cast<int64_t>(last - first);
#pragma omp parallel for schedule(static)
    for (int64_t wi = 0; wi < n_windows; ++wi) {
      const Window& win = batch.windows[first + static_cast<size_t>(wi)];
      for (int64_t t = 0; t < win.length; ++t) {
        int64_t row = win.offset - begin + t;
        rope.apply(Q.data() + row * nq, c.n_heads, hd, t);
        rope.apply(K.data() + row * nkv, c.n_kv_heads, hd, t);
      }
    }
#pragma omp parallel
    {
      Mat scores;
#pragma omp for schedule(dynamic, 1)
      for (int64_t job = 0; job < n_windows * c.n_heads; ++job) {
        const Window& win = batch.windows[first + static_cast<size_t>(job / c.n_heads)];
        int head = static_cast<int>(job % c.n_heads), kv_head = head / group;
        int64_t row = win.offset - begin;
        HeadSlices h{Q.data() + row * nq + head * hd, K.data() + row * nkv + kv_head * hd, V.data() + row * nkv + kv_head * hd,
                     O.data() + row * nq + head * hd, nq, nkv, nkv, nq};
        attend_head(h, win.length, hd, hd, scale, window, w.sinks.empty() ? nullptr : w.sinks.data() + head, scores);
      }
    }
    linear(O.data(), n, w.o, &w.o_bias, out.data() + begin * c.hidden);
  });
}

}  // namespace moeforge
