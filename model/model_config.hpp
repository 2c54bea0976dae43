// The hyperparameters of a checkpoint, resolved from config.json with its family's table:
// sizes, expert counts, routing rules, norms, RoPE, and which layers are MoE. Missing required
// keys are errors naming the config file; optional keys fall back to the HF class defaults.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/architecture.hpp"

namespace moeforge {

struct ModelConfig {
  const Family* family = nullptr;
  std::string label;  // config file path, for messages
  nlohmann::json raw;

  int n_layers = 0;
  int64_t hidden = 0;
  int64_t vocab = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate = 0;  // dense FFN width

  int n_experts = 0;  // routed experts per MoE layer (0 for dense models)
  int top_k = 0;
  int64_t expert_intermediate = 0;
  int64_t shared_intermediate = 0;  // 0 when there is no shared expert
  bool renormalize = false;         // renormalise the top-k weights to sum 1

  bool tie_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  nlohmann::json rope_scaling;                   // null when absent (v4 rope_scaling or v5 rope_parameters)
  int64_t rotary_dim = 0;                        // dims of each q/k head that RoPE rotates
  std::vector<std::optional<int>> sliding_window; // per layer; nullopt = full attention
  QkNormKind qk_norm = QkNormKind::kNone;        // as this config has it (glm4_moe: use_qk_norm)
  bool attention_sinks = false;
  bool mxfp4_experts = false;                    // gpt-oss experts stored as MXFP4 blocks and scales
  double swiglu_limit = 7.0;                     // gpt-oss clamped SwiGLU
  std::string experts_key;                       // the config key that holds n_experts

  // DeepSeek-V3 (MLA) and DeepSeek-style routing (deepseek_v3, glm4_moe)
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  int n_group = 1, topk_group = 1;
  double routed_scaling_factor = 1.0;
  bool rope_interleave = false;

  std::vector<bool> moe_layer;  // per layer
  bool is_moe_layer(int layer) const { return moe_layer[static_cast<size_t>(layer)]; }
  bool is_moe() const { return n_experts > 0; }
  int n_moe_layers() const;
};

ModelConfig resolve_config(const nlohmann::json& config, const std::string& label);
// The config keys that hold the expert count in this config (all spellings present, at least the
// family's own), for writers that change it.
std::vector<std::string> expert_count_keys(const ModelConfig& c);

bool pattern_present(const TensorPattern& p, const ModelConfig& c);

struct ExpectedTensor {
  std::string name;
  const TensorPattern* pattern;
  int layer = -1;
  int expert = -1;
};
// Every tensor the family's table says this config stores, in natural order.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c);
// What a stored tensor is, if the table knows it (layer/expert filled in).
std::optional<ExpectedTensor> classify_tensor(const Family& f, const std::string& name);

// Typed config access with errors that name the file and key.
int64_t config_int(const nlohmann::json& c, const std::string& key, const std::string& label);
int64_t config_int_or(const nlohmann::json& c, const std::string& key, int64_t fallback);
double config_number_or(const nlohmann::json& c, const std::string& key, double fallback);
bool config_bool_or(const nlohmann::json& c, const std::string& key, bool fallback);

}  // namespace moeforge
