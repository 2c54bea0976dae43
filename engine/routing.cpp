#include "engine/routing.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.hpp"
#include "engine/tensor_ops.hpp"

namespace moeforge {
namespace {

// The k largest of score[0..E) (ties: lower index), in descending order.
void top_k(const float* score, int E, int k, std::vector<int32_t>& order) {
  order.resize(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return score[a] != score[b] ? score[a] > score[b] : a < b; });
}

// Writes the chosen experts sorted by descending weight (ties: lower index).
void emit_sorted(const int32_t* chosen, const float* w, int k, int32_t* idx, float* weight) {
  std::vector<int> slot(static_cast<size_t>(k));
  std::iota(slot.begin(), slot.end(), 0);
  std::sort(slot.begin(), slot.end(), [&](int a, int b) { return w[a] != w[b] ? w[a] > w[b] : chosen[a] < chosen[b]; });
  for (int s = 0; s < k; ++s) {
    idx[s] = chosen[slot[s]];
    weight[s] = w[slot[s]];
  }
}

void route_sigmoid_groups(const ModelConfig& c, const float* correction, const float* logits, int64_t n, float* probs, int32_t* idx,
                          float* weight) {
  const int E = c.n_experts, k = c.top_k, G = c.n_group, per_group = E / G;
  std::vector<float> choice(static_cast<size_t>(E)), group_score(static_cast<size_t>(G)), w(static_cast<size_t>(k));
  std::vector<int32_t> order, groups, chosen(static_cast<size_t>(k));
  for (int64_t t = 0; t < n; ++t) {
    float* s = probs + t * E;
    for (int e = 0; e < E; ++e) {
      s[e] = sigmoid(logits[t * E + e]);
      choice[e] = s[e] + correction[e];
    }
    for (int g = 0; g < G; ++g) {
      top_k(choice.data() + g * per_group, per_group, 2, order);
      group_score[g] = choice[g * per_group + order[0]] + choice[g * per_group + order[1]];
    }
    top_k(group_score.data(), G, c.topk_group, groups);
    std::vector<bool> kept(static_cast<size_t>(G), false);
    for (int i = 0; i < c.topk_group; ++i) kept[groups[i]] = true;
    for (int e = 0; e < E; ++e)
      if (!kept[e / per_group]) choice[e] = 0.0f;
    top_k(choice.data(), E, k, order);
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      chosen[j] = order[j];
      w[j] = s[order[j]];
      sum += w[j];
    }
    for (int j = 0; j < k; ++j) {
      if (c.renormalize) w[j] /= sum + 1e-20f;
      w[j] *= static_cast<float>(c.routed_scaling_factor);
    }
    emit_sorted(chosen.data(), w.data(), k, idx + t * k, weight + t * k);
  }
}

void route_selected_softmax(const float* logits, int64_t n, int E, int k, float* probs, int32_t* idx, float* weight) {
  std::vector<int32_t> order;
  std::vector<float> w(static_cast<size_t>(k));
  for (int64_t t = 0; t < n; ++t) {
    const float* l = logits + t * E;
    std::copy(l, l + E, probs + t * E);
    softmax(probs + t * E, E);
    top_k(l, E, k, order);
    for (int j = 0; j < k; ++j) w[j] = l[order[j]];
    softmax(w.data(), k);
    emit_sorted(order.data(), w.data(), k, idx + t * k, weight + t * k);
  }
}

}  // namespace

RouterWeights load_router(const WeightSource& ckpt, const ModelConfig& c, int layer) {
  const Family& f = *c.family;
  RouterWeights w;
  w.weight = load_weight(ckpt, expand(find_pattern(f, Role::kRouter)->pattern, layer), {c.n_experts, c.hidden});
  if (const TensorPattern* b = find_pattern(f, Role::kRouterBias)) {
    Weight bias = load_weight(ckpt, expand(b->pattern, layer), {c.n_experts});
    (f.router == RouterKind::kSigmoidGroupTopK ? w.correction : w.bias) = std::move(bias);
  }
  return w;
}

void check_routing(const ModelConfig& c) {
  if (c.family->router != RouterKind::kSigmoidGroupTopK) return;
  std::string why;
  if (c.n_experts % c.n_group != 0) why = "n_group " + std::to_string(c.n_group) + " does not divide the " + std::to_string(c.n_experts) + " experts";
  else if (c.n_experts / c.n_group < 2) why = "groups of " + std::to_string(c.n_experts / c.n_group) + " expert(s); group scores need at least 2";
  else if (c.topk_group > c.n_group) why = "topk_group " + std::to_string(c.topk_group) + " exceeds n_group " + std::to_string(c.n_group);
  if (!why.empty())
    throw UnsupportedError(c.label + ": " + std::string(c.family->model_type) + " routing with " + why +
                           " (transformers and vLLM fail on it too); hint: set n_group and topk_group so that every group holds at least 2 experts");
}

void route_tokens(const ModelConfig& c, const RouterWeights& w, const float* x, int64_t n, float* logits, float* probs, int32_t* idx,
                  float* weight) {
  linear(x, n, w.weight, &w.bias, logits);
  switch (c.family->router) {
    case RouterKind::kSigmoidGroupTopK: route_sigmoid_groups(c, w.correction.data(), logits, n, probs, idx, weight); break;
    case RouterKind::kSelectedSoftmaxTopK: route_selected_softmax(logits, n, c.n_experts, c.top_k, probs, idx, weight); break;
    default: route(logits, n, c.n_experts, c.top_k, c.renormalize, probs, idx, weight); break;
  }
}

void route(const float* logits, int64_t n, int E, int k, bool renormalize, float* probs, int32_t* idx, float* weight) {
  std::vector<int32_t> order;
  for (int64_t t = 0; t < n; ++t) {
    float* p = probs + t * E;
    std::copy(logits + t * E, logits + (t + 1) * E, p);
    softmax(p, E);
    top_k(p, E, k, order);
    float sum = 0;
    for (int s = 0; s < k; ++s) sum += p[order[s]];
    for (int s = 0; s < k; ++s) {
      idx[t * k + s] = order[s];
      weight[t * k + s] = renormalize ? p[order[s]] / sum : p[order[s]];
    }
  }
}

}  // namespace moeforge
