#include "engine/feed_forward.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "engine/tensor_ops.hpp"

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

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

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

MoeWeights load_moe(const WeightSource& ckpt, const ModelConfig& c, int layer) {
  const Family& f = *c.family;
  MoeWeights w;
  w.router = load_weight(ckpt, expand(find_pattern(f, Role::kRouter)->pattern, layer), {c.n_experts, c.hidden});
  for (int e = 0; e < c.n_experts; ++e) w.experts.push_back(load_mlp(ckpt, f, Role::kExpert, layer, e, c.expert_intermediate, c.hidden));
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
  const float* u = U.data();
  for (int64_t i = 0; i < n * width; ++i) g[i] = silu(g[i]) * u[i];
  linear_rows(G.data(), width, n, width, w.down.data(), hidden, Y);
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

void route(const float* logits, int64_t n, int E, int k, bool renormalize, float* probs, int32_t* idx, float* weight) {
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t) {
    float* p = probs + t * E;
    std::copy(logits + t * E, logits + (t + 1) * E, p);
    softmax(p, E);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
    float sum = 0;
    for (int s = 0; s < k; ++s) sum += p[order[s]];
    for (int s = 0; s < k; ++s) {
      idx[t * k + s] = order[s];
      weight[t * k + s] = renormalize ? p[order[s]] / sum : p[order[s]];
    }
  }
}

void moe_block(const ModelConfig& c, const MoeWeights& w, int layer, const Mat& X, const Mat& residual, Mat& out,
               Observer& observer, const Batch& batch, int64_t chunk_tokens) {
  const int64_t H = c.hidden;
  const int E = c.n_experts, k = c.top_k;
  const bool all = observer.wants_all_expert_outputs();
  for (const auto& [begin, n] : token_chunks(batch, chunk_tokens)) {
    const float* x = X.data() + begin * H;
    Mat logits(n, E), probs(n, E), expert_out(n * k, H), routed(n, H);
    std::vector<int32_t> idx(static_cast<size_t>(n * k));
    std::vector<float> weight(static_cast<size_t>(n * k));
    linear(x, n, w.router, nullptr, logits.data());
    route(logits.data(), n, E, k, c.renormalize, probs.data(), idx.data(), weight.data());

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
