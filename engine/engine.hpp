// The CPU forward engine: float32, layer by layer. All windows of a batch pass through layer l
// before layer l+1 is loaded, so memory is one layer's weights plus the activations of the
// batch, whatever the model size. Semantics follow Hugging Face transformers (eager attention):
// llama, mistral (sliding window), qwen2 (q/k/v biases), qwen3 (per-head q/k norm), mixtral,
// qwen2_moe (shared expert), qwen3_moe, olmoe (full-width q/k norm), deepseek_v3 (multi-head
// latent attention, sigmoid group routing, shared experts), glm4_moe (partial rotary, optional q/k
// norm, DeepSeek routing), gpt_oss (sinks, per-layer sliding window, biased clamped-SwiGLU experts,
// MXFP4); either expert layout; tied embeddings.
// Results are bit-identical for any thread count.
#pragma once
#include "formats/checkpoint.hpp"
#include "text/batch.hpp"
#include "model/model_config.hpp"
#include "engine/observer.hpp"

namespace moeforge {

struct EngineOptions {
  int threads = 0;              // 0: all cores
  int64_t chunk_tokens = 4096;  // tokens per attention group / MoE chunk
};

class Engine {
 public:
  explicit Engine(const Checkpoint& ckpt, EngineOptions options = {});
  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return ckpt_; }
  void run(const Batch& batch, Observer& observer) const;

 private:
  void check_batch(const Batch& batch) const;
  const Checkpoint& ckpt_;
  ModelConfig config_;
  EngineOptions options_;
};

}  // namespace moeforge
