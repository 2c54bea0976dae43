#include "engine/mla_attention.hpp"

#include <cmath>

#include "engine/attention.hpp"
#include "engine/tensor_ops.hpp"

namespace moeforge {
namespace {

constexpr double kLatentNormEps = 1e-6;  // DeepseekV3RMSNorm's default, used for q_a/kv_a_layernorm

// Copies `width` columns starting at `col` of each row of A into a dense matrix.
Mat columns(const Mat& A, int64_t col, int64_t width) { return A.block(0, col, A.rows(), width); }

}  // namespace

MlaWeights load_mla(const WeightSource& ckpt, const ModelConfig& c, int l) {
  const int64_t h = c.hidden, nh = c.n_heads, qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  auto name = [&](const char* suffix) { return "model.layers." + std::to_string(l) + ".self_attn." + suffix; };
  MlaWeights w;
  if (c.q_lora_rank > 0) {
    w.q_a = load_weight(ckpt, name("q_a_proj.weight"), {c.q_lora_rank, h});
    w.q_a_norm = load_weight(ckpt, name("q_a_layernorm.weight"), {c.q_lora_rank});
    w.q_b = load_weight(ckpt, name("q_b_proj.weight"), {nh * qk, c.q_lora_rank});
    w.q_a_bias = load_optional(ckpt, name("q_a_proj.bias"), {c.q_lora_rank});
  } else {
    w.q = load_weight(ckpt, name("q_proj.weight"), {nh * qk, h});
  }
  w.kv_a = load_weight(ckpt, name("kv_a_proj_with_mqa.weight"), {c.kv_lora_rank + c.qk_rope_head_dim, h});
  w.kv_a_norm = load_weight(ckpt, name("kv_a_layernorm.weight"), {c.kv_lora_rank});
  w.kv_b = load_weight(ckpt, name("kv_b_proj.weight"), {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank});
  w.o = load_weight(ckpt, name("o_proj.weight"), {h, nh * c.v_head_dim});
  w.kv_a_bias = load_optional(ckpt, name("kv_a_proj_with_mqa.bias"), {c.kv_lora_rank + c.qk_rope_head_dim});
  w.o_bias = load_optional(ckpt, name("o_proj.bias"), {h});
  return w;
}

float mla_softmax_scale(const ModelConfig& c) {
  double scale = 1.0 / std::sqrt(static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim));
  const auto& s = c.rope_scaling;
  if (s.is_object() && s.contains("mscale_all_dim") && s["mscale_all_dim"].is_number() && s["mscale_all_dim"].get<double>() != 0) {
    double factor = s.contains("factor") && s["factor"].is_number() ? s["factor"].get<double>() : 1.0;
    double m = yarn_mscale(factor, s["mscale_all_dim"].get<double>());
    scale *= m * m;
  }
  return static_cast<float>(scale);
}

void mla_attention(const ModelConfig& c, const MlaWeights& w, const Rope& rope, const Batch& batch, const Mat& X, Mat& out,
                   int64_t group_tokens) {
  const int nh = c.n_heads;
  const int64_t nope = c.qk_nope_head_dim, rot = c.qk_rope_head_dim, vd = c.v_head_dim, lora = c.kv_lora_rank;
  const int64_t qk = nope + rot, nq = nh * qk, nkv = nh * (nope + vd), no = nh * vd;
  const float scale = mla_softmax_scale(c);
  for_each_window_group(batch, group_tokens, [&](size_t first, size_t last, int64_t begin, int64_t n) {
    const float* x = X.data() + begin * c.hidden;
    Mat Q(n, nq), C(n, lora + rot);
    if (c.q_lora_rank > 0) {
      Mat A(n, c.q_lora_rank);
      linear(x, n, w.q_a, &w.q_a_bias, A.data());
      rms_norm(A.data(), n, c.q_lora_rank, w.q_a_norm.data(), kLatentNormEps);
      linear(A.data(), n, w.q_b, nullptr, Q.data());
    } else {
      linear(x, n, w.q, nullptr, Q.data());
    }
    linear(x, n, w.kv_a, &w.kv_a_bias, C.data());
    Mat latent = columns(C, 0, lora), KV(n, nkv);
    rms_norm(latent.data(), n, lora, w.kv_a_norm.data(), kLatentNormEps);
    linear(latent.data(), n, w.kv_b, nullptr, KV.data());
    // Keys per head: [k_nope from kv_b_proj | the shared k_rope].
    Mat K(n, nq), O(n, no);
    const int64_t n_windows = static_cast<int64_t>(last - first);
#pragma omp parallel for schedule(static)
    for (int64_t wi = 0; wi < n_windows; ++wi) {
      const Window& win = batch.windows[first + static_cast<size_t>(wi)];
      for (int64_t t = 0; t < win.length; ++t) {
        int64_t r = win.offset - begin + t;
        float* k_rope = C.data() + r * (lora + rot) + lora;
        if (c.rope_interleave) {
          rope.apply_pairs(Q.data() + r * nq + nope, nh, qk, t);
          rope.apply_pairs(k_rope, 1, rot, t);
        } else {
          rope.apply(Q.data() + r * nq + nope, nh, qk, t);
          rope.apply(k_rope, 1, rot, t);
        }
        for (int h = 0; h < nh; ++h) {
          float* k = K.data() + r * nq + h * qk;
          std::copy(KV.data() + r * nkv + h * (nope + vd), KV.data() + r * nkv + h * (nope + vd) + nope, k);
          std::copy(k_rope, k_rope + rot, k + nope);
        }
      }
    }
#pragma omp parallel
    {
      Mat scores;
#pragma omp for schedule(dynamic, 1)
      for (int64_t job = 0; job < n_windows * nh; ++job) {
        const Window& win = batch.windows[first + static_cast<size_t>(job / nh)];
        int head = static_cast<int>(job % nh);
        int64_t r = win.offset - begin;
        HeadSlices hs{Q.data() + r * nq + head * qk, K.data() + r * nq + head * qk, KV.data() + r * nkv + head * (nope + vd) + nope,
                      O.data() + r * no + head * vd, nq, nq, nkv, no};
        attend_head(hs, win.length, qk, vd, scale, 0, nullptr, scores);
      }
    }
    linear(O.data(), n, w.o, &w.o_bias, out.data() + begin * c.hidden);
  });
}

}  // namespace moeforge
