#include "engine/engine.hpp"

#include <omp.h>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "formats/tensor_reader.hpp"
#include "engine/attention.hpp"
#include "engine/feed_forward.hpp"
#include "engine/mla_attention.hpp"
#include "engine/routing.hpp"
#include "model/expert_storage.hpp"
#include "engine/rope.hpp"
#include "engine/tensor_ops.hpp"

namespace moeforge {
namespace {

std::string layer_name(int l, const char* suffix) { return "model.layers." + std::to_string(l) + "." + suffix; }

Mat embed(const WeightSource& ckpt, const ModelConfig& c, const Batch& batch) {
  const TensorInfo& e = require_weight(ckpt, "model.embed_tokens.weight");
  if (e.shape != Shape{c.vocab, c.hidden})
    throw FormatError(where(ckpt.label(), e.name) + "shape " + shape_string(e.shape) + ", config.json implies " +
                      shape_string({c.vocab, c.hidden}));
  Mat H(batch.n_tokens(), c.hidden);
  // Reads may throw; an exception must not leave an OpenMP region, so the first one is kept.
  std::exception_ptr error;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < batch.n_tokens(); ++t) {
    try {
      ckpt.read_rows(e, batch.tokens[t], batch.tokens[t] + 1, H.row(t).data());
    } catch (...) {
#pragma omp critical
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return H;
}

void add_norm(const Mat& H, Mat& X, const Weight& w, double eps) {
  X = H;
  rms_norm(X.data(), X.rows(), X.cols(), w.data(), eps);
}

}  // namespace

Engine::Engine(const Checkpoint& ckpt, EngineOptions options)
    : owned_(std::make_unique<CheckpointWeights>(ckpt)), ckpt_(*owned_), checkpoint_(&ckpt), options_(options) {
  configure();
}

Engine::Engine(const WeightSource& source, EngineOptions options) : ckpt_(source), options_(options) { configure(); }

void Engine::configure() {
  const WeightSource& ckpt = ckpt_;
  if (ckpt.config().is_null()) throw FormatError(ckpt.label() + ": no config.json; the forward pass needs the architecture");
  config_ = resolve_config(ckpt.config(), ckpt.config_label());
  check_routing(config_);
  if (checkpoint_) check_expert_storage(*checkpoint_, config_);
  Eigen::setNbThreads(1);  // parallelism comes from fixed row blocks, see tensor_ops.hpp
}

void Engine::check_batch(const Batch& batch) const {
  for (size_t i = 0; i < batch.tokens.size(); ++i)
    if (batch.tokens[i] < 0 || batch.tokens[i] >= config_.vocab)
      throw UsageError(ckpt_.label() + ": token id " + std::to_string(batch.tokens[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary [0, " + std::to_string(config_.vocab) + ")");
}

void Engine::run(const Batch& batch, Observer& observer) const {
  const ModelConfig& c = config_;
  check_batch(batch);
  // The thread count is an OpenMP ICV of the calling thread: set for this run's regions and
  // restored afterwards, so nothing else in the process inherits it.
  struct ScopedThreads {
    int previous = omp_get_max_threads();
    explicit ScopedThreads(int n) { omp_set_num_threads(n); }
    ~ScopedThreads() { omp_set_num_threads(previous); }
  } scoped(resolve_threads(options_.threads));
  Rope rope(c, c.rotary_dim);
  rope.prepare(batch.longest());

  Mat H = embed(ckpt_, c, batch);
  observer.activation(Site::kEmbed, -1, H);
  Mat X(H.rows(), c.hidden), A(H.rows(), c.hidden);
  for (int l = 0; l < c.n_layers; ++l) {
    observer.activation(Site::kLayerInput, l, H);
    {
      Weight norm = load_weight(ckpt_, layer_name(l, "input_layernorm.weight"), {c.hidden});
      add_norm(H, X, norm, c.rms_norm_eps);
      if (c.family->attention == AttentionKind::kMla) {
        MlaWeights w = load_mla(ckpt_, c, l);
        mla_attention(c, w, rope, batch, X, A, options_.chunk_tokens);
      } else {
        AttentionWeights w = load_attention(ckpt_, c, l);
        attention(c, w, rope, batch, l, X, A, options_.chunk_tokens);
      }
    }
    observer.activation(Site::kAttnOut, l, A);
    H += A;
    Weight norm = load_weight(ckpt_, layer_name(l, "post_attention_layernorm.weight"), {c.hidden});
    add_norm(H, X, norm, c.rms_norm_eps);
    observer.activation(Site::kRouterInput, l, X);
    if (c.is_moe_layer(l)) {
      MoeWeights w = load_moe(ckpt_, c, l);
      moe_block(c, w, l, X, H, A, observer, batch, options_.chunk_tokens);
    } else {
      MlpWeights w = load_dense_mlp(ckpt_, c, l);
      // Per chunk of the batch's segments, so a token's values do not depend on other segments.
      for (const auto& [begin, n] : token_chunks(batch, options_.chunk_tokens))
        dense_mlp(w, X.data() + begin * c.hidden, n, A.data() + begin * c.hidden);
    }
    observer.activation(Site::kMlpOut, l, A);
    H += A;
    observer.activation(Site::kLayerOut, l, H);
  }
  Weight norm = load_weight(ckpt_, "model.norm.weight", {c.hidden});
  add_norm(H, X, norm, c.rms_norm_eps);
  observer.activation(Site::kFinalNorm, -1, X);
  if (!observer.wants_logits()) return;
  bool stored = ckpt_.find("lm_head.weight") != nullptr;
  if (!stored && !c.tie_embeddings) require_weight(ckpt_, "lm_head.weight");  // throws: untied but missing
  Weight head = load_weight(ckpt_, stored ? "lm_head.weight" : "model.embed_tokens.weight", {c.vocab, c.hidden});
  const int64_t n_windows = static_cast<int64_t>(batch.windows.size());
#pragma omp parallel
  {
    Mat logits;
#pragma omp for schedule(dynamic, 1)
    for (int64_t wi = 0; wi < n_windows; ++wi) {
      const Window& w = batch.windows[static_cast<size_t>(wi)];
      logits.resize(w.length, c.vocab);
      linear_rows(X.data() + w.offset * c.hidden, c.hidden, w.length, c.hidden, head.data(), c.vocab, logits.data());
      observer.logits(static_cast<size_t>(wi), logits.data(), w.length, c.vocab);
    }
  }
}

}  // namespace moeforge
