#include "engine/feed_forward.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "engine/tensor_ops.hpp"
#include "model/expert_storage.hpp"

namespace moeforge {
namespace {

constexpr int64_t kExpertRows = 512;  // rows per expert GEMM, bounds per-thread scratch

MlpWeights load_mlp(const WeightSource& ckpt, const Family& f, Role role, int layer, int expert, int64_t width, int64_t hidden) {
  auto name = [&](Proj p) {
    const TensorPattern* t = find_pattern(f, role, p);
    if (t == nullptr) throw UnsupportedError(std::string(f.model_type) + " has no tensor for this FFN role");
    return expand(t->pattern, layer, expert);
  };
  MlpWeights w;
  w.gate = load_weight(ckpt, name(Proj::kGate), {width, hidden});
  w.up = load_weight(ckpt, name(Proj::kUp), {width, hidden});
  w.down = load_weight(ckpt, name(Proj::kDown), {hidden, width});
  return w;
}


void add_row_bias(float* Y, int64_t n, int64_t width, const Weight& bias) {
  if (bias.empty()) return;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c) Y[r * width + c] += bias.data()[c];
}

}  // namespace

MoeChunk MoeChunk::slice(int64_t from, int64_t to) const {
  MoeChunk c = *this;
  const int64_t H = hidden;
  c.token_begin = token_begin + from;
  c.n = to - from;
  c.input = input + from * H;
  c.residual = residual ? residual + from * H : nullptr;
  c.router_logits = router_logits + from * n_experts;
  c.probs = probs + from * n_experts;
  c.topk_idx = topk_idx + from * k;
  c.topk_weight = topk_weight + from * k;
  c.expert_out = expert_out + from * k * H;
  c.routed_out = routed_out + from * H;
  c.block_out = block_out + from * H;
  c.all_expert_out = all_expert_out ? all_expert_out + from * H : nullptr;
  return c;
}

MlpWeights load_dense_mlp(const WeightSource& ckpt, const ModelConfig& c, int layer) {
  return load_mlp(ckpt, *c.family, Role::kFfn, layer, -1, c.intermediate, c.hidden);
}

// gpt-oss experts are re-laid out (and dequantised) into owned float32 matrices.
MlpWeights load_clamped_expert(const WeightSource& source, const ModelConfig& c, int layer, int e) {
  const Checkpoint* ckpt = source.checkpoint();
  if (!ckpt) throw UnsupportedError(source.label() + ": gpt-oss experts are read only from a checkpoint on disk");
  ExpertFfn x = read_expert(*ckpt, c, layer, e);
  std::string name = "model.layers." + std::to_string(layer) + ".mlp.experts[" + std::to_string(e) + "].";
  MlpWeights w;
  w.gate = Weight(name + "gate", x.width, x.hidden, std::move(x.gate));
  w.up = Weight(name + "up", x.width, x.hidden, std::move(x.up));
  w.down = Weight(name + "down", x.hidden, x.width, std::move(x.down));
  w.gate_bias = Weight(name + "gate_bias", 1, x.width, std::move(x.gate_bias));
  w.up_bias = Weight(name + "up_bias", 1, x.width, std::move(x.up_bias));
  w.down_bias = Weight(name + "down_bias", 1, x.hidden, std::move(x.down_bias));
  w.clamp_limit = static_cast<float>(c.swiglu_limit);
  return w;
}

MoeWeights load_moe(const WeightSource& ckpt, const ModelConfig& c, int layer) {
  const Family& f = *c.family;
  MoeWeights w;
  w.router = load_router(ckpt, c, layer);
  for (int e = 0; e < c.n_experts; ++e)
    w.experts.push_back(f.expert_kind == ExpertKind::kClampedSwiGlu ? load_clamped_expert(ckpt, c, layer, e)
                                                                     : load_mlp(ckpt, f, Role::kExpert, layer, e, c.expert_intermediate, c.hidden));
  if (c.shared_intermediate > 0 && find_pattern(f, Role::kSharedExpert, Proj::kGate) != nullptr) {
    w.shared = load_mlp(ckpt, f, Role::kSharedExpert, layer, -1, c.shared_intermediate, c.hidden);
    if (const TensorPattern* g = find_pattern(f, Role::kSharedExpertGate)) w.shared_gate = load_weight(ckpt, expand(g->pattern, layer), {1, c.hidden});
  }
  return w;
}

void mlp_rows(const MlpWeights& w, const float* X, int64_t n, float* Y) {
  const int64_t hidden = w.gate.cols(), width = w.gate.rows();
  thread_local Mat G, U;
  G.resize(n, width);
  U.resize(n, width);
  linear_rows(X, hidden, n, hidden, w.gate.data(), width, G.data());
  linear_rows(X, hidden, n, hidden, w.up.data(), width, U.data());
  float* g = G.data();
  float* u = U.data();
  if (w.clamp_limit > 0) {
    add_row_bias(g, n, width, w.gate_bias);
    add_row_bias(u, n, width, w.up_bias);
    const float limit = w.clamp_limit;
    for (int64_t i = 0; i < n * width; ++i) {
      float gate = std::min(g[i], limit), up = std::clamp(u[i], -limit, limit);
      g[i] = (up + 1.0f) * (gate * sigmoid(1.702f * gate));
    }
  } else {
    for (int64_t i = 0; i < n * width; ++i) g[i] = silu(g[i]) * u[i];
  }
  linear_rows(G.data(), width, n, width, w.down.data(), hidden, Y);
  add_row_bias(Y, n, hidden, w.down_bias);
}

void dense_mlp(const MlpWeights& w, const float* X, int64_t n, float* Y) {
  const int64_t hidden = w.gate.cols();
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t r0 = b * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
    mlp_rows(w, X + r0 * hidden, r1 - r0, Y + r0 * hidden);
  }
}

void dense_mlp(const MlpWeights& w, const Mat& X, Mat& Y) { dense_mlp(w, X.data(), X.rows(), Y.data()); }

std::vector<std::pair<int64_t, int64_t>> token_chunks(const Batch& batch, int64_t chunk_tokens) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const WindowRange& seg : segment_windows(batch, {0, batch.windows.size()}, chunk_tokens)) {
    const Window& last = batch.windows[seg.last - 1];
    int64_t begin = batch.windows[seg.first].offset, end = last.offset + last.length;
    for (int64_t b = begin; b < end; b += chunk_tokens) out.push_back({b, std::min(chunk_tokens, end - b)});
  }
  return out;
}

void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, const Batch& batch, int64_t chunk_tokens) {
  const int64_t H = c.hidden;
  const int E = c.n_experts, k = c.top_k;
  const bool all = observer.wants_all_expert_outputs();
  for (const auto& piece : token_chunks(batch, chunk_tokens)) {
    const int64_t begin = piece.first, n = piece.second;  // plain locals: OpenMP regions below use them
    const float* x = X.data() + begin * H;
    Mat logits(n, E), probs(n, E), expert_out(n * k, H), routed(n, H);
    std::vector<int32_t> idx(static_cast<size_t>(n * k));
    std::vector<float> weight(static_cast<size_t>(n * k));
    route_tokens(c, w.router, x, n, logits.data(), probs.data(), idx.data(), weight.data());

    std::vector<std::vector<int64_t>> slots(static_cast<size_t>(E));  // per expert: token * k + slot
    for (int64_t s = 0; s < n * k; ++s) slots[static_cast<size_t>(idx[s])].push_back(s);
#pragma omp parallel
    {
      Mat xe, ye;
#pragma omp for schedule(dynamic, 1)
      for (int e = 0; e < E; ++e) {
        const auto& list = slots[static_cast<size_t>(e)];
        for (size_t r0 = 0; r0 < list.size(); r0 += kExpertRows) {
          int64_t m = static_cast<int64_t>(std::min<size_t>(kExpertRows, list.size() - r0));
          xe.resize(m, H);
          ye.resize(m, H);
          for (int64_t i = 0; i < m; ++i) xe.row(i) = Eigen::Map<const Eigen::RowVectorXf>(x + (list[r0 + i] / k) * H, H);
          mlp_rows(w.experts[static_cast<size_t>(e)], xe.data(), m, ye.data());
          for (int64_t i = 0; i < m; ++i) expert_out.row(list[r0 + i]) = ye.row(i);
        }
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      routed.row(t).setZero();
      for (int s = 0; s < k; ++s) routed.row(t) += weight[t * k + s] * expert_out.row(t * k + s);
    }
    float* block = out.data() + begin * H;
    MatMap block_out(block, n, H);
    block_out = routed;
    if (!w.shared.empty()) {
      Mat shared(n, H), gate(n, 1);
      dense_mlp(w.shared, x, n, shared.data());
      if (!w.shared_gate.empty()) {
        linear(x, n, w.shared_gate, nullptr, gate.data());
        for (int64_t t = 0; t < n; ++t) shared.row(t) *= sigmoid(gate(t, 0));
      }
      block_out += shared;
    }
    Mat everything;
    if (all) {
      everything.resize(E * n, H);
#pragma omp parallel for schedule(dynamic, 1)
      for (int e = 0; e < E; ++e)
        for (int64_t r0 = 0; r0 < n; r0 += kExpertRows)
          mlp_rows(w.experts[static_cast<size_t>(e)], x + r0 * H, std::min(kExpertRows, n - r0), everything.data() + (e * n + r0) * H);
    }
    MoeChunk chunk;
    chunk.layer = layer;
    chunk.token_begin = begin;
    chunk.n = n;
    chunk.hidden = H;
    chunk.n_experts = E;
    chunk.k = k;
    chunk.input = x;
    chunk.residual = residual.data() + begin * H;
    chunk.router_logits = logits.data();
    chunk.probs = probs.data();
    chunk.topk_idx = idx.data();
    chunk.topk_weight = weight.data();
    chunk.expert_out = expert_out.data();
    chunk.routed_out = routed.data();
    chunk.block_out = block;
    chunk.all_expert_out = all ? everything.data() : nullptr;
    chunk.all_stride = n;
    observer.moe(chunk);
  }
}

}  // namespace moeforge
