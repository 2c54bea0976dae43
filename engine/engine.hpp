// The CPU forward engine: float32, layer by layer. All windows of a batch pass through layer l
// before layer l+1 is loaded, so memory is one layer's weights plus the activations of the
// batch, whatever the model size. Semantics follow Hugging Face transformers (eager attention):
// llama, mistral (sliding window), qwen2 (q/k/v biases), qwen3 (per-head q/k norm), mixtral,
// qwen2_moe (shared expert), qwen3_moe, olmoe (full-width q/k norm), deepseek_v3 (multi-head
// latent attention, sigmoid group routing, shared experts), glm4_moe (partial rotary, optional q/k
// norm, DeepSeek routing), gpt_oss (sinks, per-layer sliding window, biased clamped-SwiGLU experts,
// MXFP4); either expert layout; tied embeddings.
// Results are bit-identical for any thread count, and a token's values depend only on the
// segment of windows it is computed with (text/batch.hpp), so any split of a batch at segment
// boundaries gives the same values as the whole batch. Weights come from a checkpoint or from any
// WeightSource (e.g. a plan not written yet).
#pragma once
#include <memory>

#include "formats/checkpoint.hpp"
#include "text/batch.hpp"
#include "model/model_config.hpp"
#include "engine/observer.hpp"
#include "engine/weight_source.hpp"

namespace moeforge {

struct EngineOptions {
  int threads = 0;              // 0: all cores
  int64_t chunk_tokens = 4096;  // tokens per attention group / MoE chunk
};

class Engine {
 public:
  explicit Engine(const Checkpoint& ckpt, EngineOptions options = {});
  explicit Engine(const WeightSource& source, EngineOptions options = {});  // the source must outlive the engine
  const ModelConfig& config() const { return config_; }
  std::string label() const { return ckpt_.label(); }
  // The checkpoint the engine reads, or null when it reads another WeightSource (a plan).
  const Checkpoint* checkpoint() const { return checkpoint_; }
  // Windows are computed together in segments of at most this many tokens (text/batch.hpp).
  int64_t segment_tokens() const { return options_.chunk_tokens; }
  void run(const Batch& batch, Observer& observer) const;

 private:
  void configure();
  void check_batch(const Batch& batch) const;
  std::unique_ptr<CheckpointWeights> owned_;
  const WeightSource& ckpt_;
  const Checkpoint* checkpoint_ = nullptr;
  ModelConfig config_;
  EngineOptions options_;
};

}  // namespace moeforge
