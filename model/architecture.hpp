// Architecture descriptors as data: for each Hugging Face family, the tensors it stores (name
// patterns with {L} = layer and {E} = expert), what each one is (embedding, attention, FFN,
// expert, router, shared expert, norm ...), when it is present, and which config keys hold the
// sizes. Verbs consult these tables instead of branching on the family name.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

enum class Role {
  kEmbedding, kLmHead, kFinalNorm, kAttnNorm, kFfnNorm, kAttention, kQkNorm,
  kFfn,           // dense FFN of a dense layer
  kExpert,        // routed expert (pattern has {E})
  kRouter,        // router weight
  kRouterBias,    // DeepSeek e_score_correction_bias
  kSharedExpert,  // always-on expert
  kSharedExpertGate,  // qwen2_moe sigmoid gate of the shared expert
  kFusedExpert,   // all routed experts of a layer in one tensor, expert axis first (gpt-oss)
};
enum class Proj { kNone, kGate, kUp, kDown, kGateUp };

// When a tensor is stored.
enum class Presence {
  kAlways,
  kIfUntied,      // lm_head: only when tie_word_embeddings is false
  kIfConfigTrue,  // key is true (attention_bias, mlp_bias)
  kIfConfigSet,   // key is set and non-null (q_lora_rank)
  kIfConfigUnset, // key is null or absent
  kIfConfigPositive,  // key is a number > 0 (n_shared_experts)
  kIfMxfp4,       // quantization_config.quant_method is "mxfp4" (gpt-oss *_blocks/*_scales)
  kIfNotMxfp4,
};
// Which layers hold the tensor.
enum class LayerKind { kGlobal, kEveryLayer, kMoeLayer, kDenseLayer };

struct TensorPattern {
  std::string_view pattern;
  Role role;
  LayerKind layers;
  Proj proj = Proj::kNone;
  Presence presence = Presence::kAlways;
  std::string_view config_key = {};
};

enum class MoeLayerRule { kNone, kAll, kSparseStep /* qwen: decoder_sparse_step, mlp_only_layers */, kFirstKDense /* deepseek */ };
enum class RouterKind {
  kNone,
  kSoftmaxTopK,         // softmax over all experts, top-k (renormalised per config)
  kSigmoidGroupTopK,    // DeepSeek/GLM: sigmoid, correction bias for selection, group-limited top-k, scaling
  kSelectedSoftmaxTopK, // gpt-oss: logits + bias, top-k logits, softmax over the k selected
};
enum class ExpertKind { kSwiGlu, kClampedSwiGlu /* gpt-oss: biases, clamp, (up + 1) * gate * sigmoid(1.702 gate) */ };
enum class QkNormKind { kNone, kPerHead, kFullWidth };
enum class AttentionKind { kStandard, kMla };

struct Family {
  std::string_view model_type;  // config.json "model_type"
  std::string_view hf_class;    // config.json "architectures"[0]
  bool moe;
  MoeLayerRule moe_layers;
  RouterKind router;
  std::string_view experts_key;           // number of routed experts
  std::string_view expert_ffn_key;        // intermediate size of one expert
  std::string_view renormalize_key;       // "norm_topk_prob"; empty: always renormalise (Mixtral)
  bool renormalize_default;
  std::string_view shared_ffn_key;        // shared expert intermediate size key, if any
  QkNormKind qk_norm;
  AttentionKind attention;
  bool qkv_bias;                          // q/k/v biases always stored (qwen2)
  // HF class defaults for keys a hand-written config may omit.
  double default_rms_norm_eps;
  double default_rope_theta;
  bool default_tie_word_embeddings;
  std::vector<TensorPattern> tensors;
  // Set after construction for the families that need them.
  std::string_view experts_key_alias;     // qwen3_moe: transformers 5 writes num_local_experts
  std::string_view qk_norm_key;           // glm4_moe: q/k norms only when use_qk_norm is true
  double default_partial_rotary = 1.0;    // glm4_moe: 0.5 when the key is absent
  double default_routed_scaling = 1.0;    // deepseek_v3: 2.5
  bool attention_sinks = false;           // gpt_oss: a learned logit per head joins the softmax
  bool window_from_layer_types = false;   // gpt_oss: sliding_window on the "sliding_attention" layers
  ExpertKind expert_kind = ExpertKind::kSwiGlu;
  std::string_view default_rope_scaling;  // JSON of the class default when the config has none (gpt_oss: YaRN)
};

const std::vector<Family>& all_families();
const Family* find_family(std::string_view model_type);
const Family& require_family(std::string_view model_type, const std::string& context);
// Family for a config.json: by model_type, then by architectures[0].
const Family* family_for_config(const nlohmann::json& config);

// Expands a pattern for one layer/expert.
std::string expand(std::string_view pattern, int layer, int expert = -1);
// Matches a tensor name against a pattern, extracting {L} and {E}.
bool match_pattern(std::string_view pattern, std::string_view name, int* layer, int* expert);

// The pattern of a given role/projection in a family (null when the family has none).
const TensorPattern* find_pattern(const Family& f, Role role, Proj proj = Proj::kNone);

}  // namespace moeforge
