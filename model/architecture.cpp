#include "model/architecture.hpp"

#include <cctype>

#include "core/error.hpp"

namespace moeforge {
namespace {

using R = Role;
using L = LayerKind;
using P = Proj;
using Pr = Presence;

// Pieces shared by several families.
const std::vector<TensorPattern> kGlobals = {
    {"model.embed_tokens.weight", R::kEmbedding, L::kGlobal},
    {"model.norm.weight", R::kFinalNorm, L::kGlobal},
    {"lm_head.weight", R::kLmHead, L::kGlobal, P::kNone, Pr::kIfUntied},
};
const std::vector<TensorPattern> kNorms = {
    {"model.layers.{L}.input_layernorm.weight", R::kAttnNorm, L::kEveryLayer},
    {"model.layers.{L}.post_attention_layernorm.weight", R::kFfnNorm, L::kEveryLayer},
};
const std::vector<TensorPattern> kAttention = {
    {"model.layers.{L}.self_attn.q_proj.weight", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.k_proj.weight", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.v_proj.weight", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.o_proj.weight", R::kAttention, L::kEveryLayer},
};
const std::vector<TensorPattern> kOptionalAttentionBias = {
    {"model.layers.{L}.self_attn.q_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
    {"model.layers.{L}.self_attn.k_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
    {"model.layers.{L}.self_attn.v_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
    {"model.layers.{L}.self_attn.o_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
};
const std::vector<TensorPattern> kQkvBias = {
    {"model.layers.{L}.self_attn.q_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.k_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.v_proj.bias", R::kAttention, L::kEveryLayer},
};
const std::vector<TensorPattern> kQkNorm = {
    {"model.layers.{L}.self_attn.q_norm.weight", R::kQkNorm, L::kEveryLayer},
    {"model.layers.{L}.self_attn.k_norm.weight", R::kQkNorm, L::kEveryLayer},
};
std::vector<TensorPattern> mlp(L where) {
  return {{"model.layers.{L}.mlp.gate_proj.weight", R::kFfn, where, P::kGate},
          {"model.layers.{L}.mlp.up_proj.weight", R::kFfn, where, P::kUp},
          {"model.layers.{L}.mlp.down_proj.weight", R::kFfn, where, P::kDown}};
}
const std::vector<TensorPattern> kMlpBias = {
    {"model.layers.{L}.mlp.gate_proj.bias", R::kFfn, L::kDenseLayer, P::kNone, Pr::kIfConfigTrue, "mlp_bias"},
    {"model.layers.{L}.mlp.up_proj.bias", R::kFfn, L::kDenseLayer, P::kNone, Pr::kIfConfigTrue, "mlp_bias"},
    {"model.layers.{L}.mlp.down_proj.bias", R::kFfn, L::kDenseLayer, P::kNone, Pr::kIfConfigTrue, "mlp_bias"},
};
const std::vector<TensorPattern> kQwenStyleExperts = {
    {"model.layers.{L}.mlp.gate.weight", R::kRouter, L::kMoeLayer},
    {"model.layers.{L}.mlp.experts.{E}.gate_proj.weight", R::kExpert, L::kMoeLayer, P::kGate},
    {"model.layers.{L}.mlp.experts.{E}.up_proj.weight", R::kExpert, L::kMoeLayer, P::kUp},
    {"model.layers.{L}.mlp.experts.{E}.down_proj.weight", R::kExpert, L::kMoeLayer, P::kDown},
};

// DeepSeek-style routing extras (deepseek_v3, glm4_moe): correction bias and always-on shared experts.
const std::vector<TensorPattern> kDeepseekRouting = {
    {"model.layers.{L}.mlp.gate.e_score_correction_bias", R::kRouterBias, L::kMoeLayer},
    {"model.layers.{L}.mlp.shared_experts.gate_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kGate, Pr::kIfConfigPositive, "n_shared_experts"},
    {"model.layers.{L}.mlp.shared_experts.up_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kUp, Pr::kIfConfigPositive, "n_shared_experts"},
    {"model.layers.{L}.mlp.shared_experts.down_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kDown, Pr::kIfConfigPositive, "n_shared_experts"},
};
constexpr std::string_view kMlaBiasQa = "model.layers.{L}.self_attn.q_a_proj.bias";
constexpr std::string_view kMlaBiasKva = "model.layers.{L}.self_attn.kv_a_proj_with_mqa.bias";
constexpr std::string_view kMlaBiasO = "model.layers.{L}.self_attn.o_proj.bias";

// gpt-oss: biases on all four projections, sinks, a biased router and the experts fused as
// gate_up_proj [E, H, 2I] (gate/up interleaved) / down_proj [E, I, H], or as MXFP4 blocks and scales.
const std::vector<TensorPattern> kGptOssLayer = {
    {"model.layers.{L}.self_attn.q_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.k_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.v_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.o_proj.bias", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.self_attn.sinks", R::kAttention, L::kEveryLayer},
    {"model.layers.{L}.mlp.router.weight", R::kRouter, L::kMoeLayer},
    {"model.layers.{L}.mlp.router.bias", R::kRouterBias, L::kMoeLayer},
    {"model.layers.{L}.mlp.experts.gate_up_proj", R::kFusedExpert, L::kMoeLayer, P::kGateUp, Pr::kIfNotMxfp4},
    {"model.layers.{L}.mlp.experts.gate_up_proj_bias", R::kFusedExpert, L::kMoeLayer, P::kGateUp},
    {"model.layers.{L}.mlp.experts.gate_up_proj_blocks", R::kFusedExpert, L::kMoeLayer, P::kGateUp, Pr::kIfMxfp4},
    {"model.layers.{L}.mlp.experts.gate_up_proj_scales", R::kFusedExpert, L::kMoeLayer, P::kGateUp, Pr::kIfMxfp4},
    {"model.layers.{L}.mlp.experts.down_proj", R::kFusedExpert, L::kMoeLayer, P::kDown, Pr::kIfNotMxfp4},
    {"model.layers.{L}.mlp.experts.down_proj_bias", R::kFusedExpert, L::kMoeLayer, P::kDown},
    {"model.layers.{L}.mlp.experts.down_proj_blocks", R::kFusedExpert, L::kMoeLayer, P::kDown, Pr::kIfMxfp4},
    {"model.layers.{L}.mlp.experts.down_proj_scales", R::kFusedExpert, L::kMoeLayer, P::kDown, Pr::kIfMxfp4},
};

std::vector<TensorPattern> concat(std::initializer_list<std::vector<TensorPattern>> parts) {
  std::vector<TensorPattern> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<Family> build_families() {
  std::vector<Family> f;
  // Dense families.
  f.push_back({"llama", "LlamaForCausalLM", false, MoeLayerRule::kNone, RouterKind::kNone, "", "intermediate_size", "", false, "",
               QkNormKind::kNone, AttentionKind::kStandard, false, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kOptionalAttentionBias, mlp(L::kDenseLayer), kMlpBias})});
  f.push_back({"mistral", "MistralForCausalLM", false, MoeLayerRule::kNone, RouterKind::kNone, "", "intermediate_size", "", false, "",
               QkNormKind::kNone, AttentionKind::kStandard, false, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, mlp(L::kDenseLayer)})});
  f.push_back({"qwen2", "Qwen2ForCausalLM", false, MoeLayerRule::kNone, RouterKind::kNone, "", "intermediate_size", "", false, "",
               QkNormKind::kNone, AttentionKind::kStandard, true, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kQkvBias, mlp(L::kDenseLayer)})});
  f.push_back({"qwen3", "Qwen3ForCausalLM", false, MoeLayerRule::kNone, RouterKind::kNone, "", "intermediate_size", "", false, "",
               QkNormKind::kPerHead, AttentionKind::kStandard, false, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kOptionalAttentionBias, kQkNorm, mlp(L::kDenseLayer)})});
  // MoE families.
  f.push_back({"mixtral", "MixtralForCausalLM", true, MoeLayerRule::kAll, RouterKind::kSoftmaxTopK, "num_local_experts",
               "intermediate_size", "", true, "", QkNormKind::kNone, AttentionKind::kStandard, false, 1e-5, 1e6, false,
               concat({kGlobals, kNorms, kAttention,
                       {{"model.layers.{L}.block_sparse_moe.gate.weight", R::kRouter, L::kMoeLayer},
                        {"model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight", R::kExpert, L::kMoeLayer, P::kGate},
                        {"model.layers.{L}.block_sparse_moe.experts.{E}.w3.weight", R::kExpert, L::kMoeLayer, P::kUp},
                        {"model.layers.{L}.block_sparse_moe.experts.{E}.w2.weight", R::kExpert, L::kMoeLayer, P::kDown}}})});
  f.push_back({"qwen2_moe", "Qwen2MoeForCausalLM", true, MoeLayerRule::kSparseStep, RouterKind::kSoftmaxTopK, "num_experts",
               "moe_intermediate_size", "norm_topk_prob", false, "shared_expert_intermediate_size", QkNormKind::kNone,
               AttentionKind::kStandard, true, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kQkvBias, mlp(L::kDenseLayer), kQwenStyleExperts,
                       {{"model.layers.{L}.mlp.shared_expert.gate_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kGate},
                        {"model.layers.{L}.mlp.shared_expert.up_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kUp},
                        {"model.layers.{L}.mlp.shared_expert.down_proj.weight", R::kSharedExpert, L::kMoeLayer, P::kDown},
                        {"model.layers.{L}.mlp.shared_expert_gate.weight", R::kSharedExpertGate, L::kMoeLayer}}})});
  f.push_back({"qwen3_moe", "Qwen3MoeForCausalLM", true, MoeLayerRule::kSparseStep, RouterKind::kSoftmaxTopK, "num_experts",
               "moe_intermediate_size", "norm_topk_prob", false, "", QkNormKind::kPerHead, AttentionKind::kStandard, false,
               1e-6, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kOptionalAttentionBias, kQkNorm, mlp(L::kDenseLayer), kQwenStyleExperts})});
  f.back().experts_key_alias = "num_local_experts";
  f.push_back({"olmoe", "OlmoeForCausalLM", true, MoeLayerRule::kAll, RouterKind::kSoftmaxTopK, "num_experts",
               "intermediate_size", "norm_topk_prob", false, "", QkNormKind::kFullWidth, AttentionKind::kStandard, false,
               1e-5, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kOptionalAttentionBias, kQkNorm, kQwenStyleExperts})});
  f.push_back({"deepseek_v3", "DeepseekV3ForCausalLM", true, MoeLayerRule::kFirstKDense, RouterKind::kSigmoidGroupTopK,
               "n_routed_experts", "moe_intermediate_size", "norm_topk_prob", true, "", QkNormKind::kNone,
               AttentionKind::kMla, false, 1e-6, 10000.0, false,
               concat({kGlobals, kNorms, mlp(L::kDenseLayer), kQwenStyleExperts, kDeepseekRouting,
                       {{"model.layers.{L}.self_attn.q_proj.weight", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigUnset, "q_lora_rank"},
                        {"model.layers.{L}.self_attn.q_a_proj.weight", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigSet, "q_lora_rank"},
                        {"model.layers.{L}.self_attn.q_a_layernorm.weight", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigSet, "q_lora_rank"},
                        {"model.layers.{L}.self_attn.q_b_proj.weight", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigSet, "q_lora_rank"},
                        {"model.layers.{L}.self_attn.kv_a_proj_with_mqa.weight", R::kAttention, L::kEveryLayer},
                        {"model.layers.{L}.self_attn.kv_a_layernorm.weight", R::kAttention, L::kEveryLayer},
                        {"model.layers.{L}.self_attn.kv_b_proj.weight", R::kAttention, L::kEveryLayer},
                        {"model.layers.{L}.self_attn.o_proj.weight", R::kAttention, L::kEveryLayer}}})});
  f.back().default_routed_scaling = 2.5;
  // attention_bias puts biases on q_a_proj (only with q_lora_rank), kv_a_proj_with_mqa and o_proj.
  for (std::string_view bias : {kMlaBiasQa, kMlaBiasKva, kMlaBiasO})
    f.back().tensors.push_back({bias, R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"});
  f.push_back({"glm4_moe", "Glm4MoeForCausalLM", true, MoeLayerRule::kFirstKDense, RouterKind::kSigmoidGroupTopK,
               "n_routed_experts", "moe_intermediate_size", "norm_topk_prob", true, "", QkNormKind::kPerHead,
               AttentionKind::kStandard, false, 1e-5, 10000.0, false,
               concat({kGlobals, kNorms, kAttention, kDeepseekRouting, mlp(L::kDenseLayer), kQwenStyleExperts,
                       {{"model.layers.{L}.self_attn.q_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
                        {"model.layers.{L}.self_attn.k_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
                        {"model.layers.{L}.self_attn.v_proj.bias", R::kAttention, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "attention_bias"},
                        {"model.layers.{L}.self_attn.q_norm.weight", R::kQkNorm, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "use_qk_norm"},
                        {"model.layers.{L}.self_attn.k_norm.weight", R::kQkNorm, L::kEveryLayer, P::kNone, Pr::kIfConfigTrue, "use_qk_norm"}}})});
  f.back().qk_norm_key = "use_qk_norm";
  f.back().default_partial_rotary = 0.5;
  f.push_back({"gpt_oss", "GptOssForCausalLM", true, MoeLayerRule::kAll, RouterKind::kSelectedSoftmaxTopK, "num_local_experts",
               "intermediate_size", "", true, "", QkNormKind::kNone, AttentionKind::kStandard, true, 1e-5, 150000.0, false,
               concat({kGlobals, kNorms, kAttention, kGptOssLayer})});
  f.back().attention_sinks = true;
  f.back().window_from_layer_types = true;
  f.back().expert_kind = ExpertKind::kClampedSwiGlu;
  f.back().default_rope_scaling =
      R"({"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0, "truncate": false, "original_max_position_embeddings": 4096})";
  return f;
}

bool consume_number(std::string_view name, size_t* pos, int* out) {
  size_t start = *pos;
  long value = 0;
  while (*pos < name.size() && std::isdigit(static_cast<unsigned char>(name[*pos])) && *pos - start < 9)
    value = value * 10 + (name[(*pos)++] - '0');
  if (*pos == start || (*pos < name.size() && std::isdigit(static_cast<unsigned char>(name[*pos])))) return false;
  if (name[start] == '0' && *pos - start > 1) return false;  // no leading zeros
  *out = static_cast<int>(value);
  return true;
}

}  // namespace

const std::vector<Family>& all_families() {
  static const std::vector<Family> kFamilies = build_families();
  return kFamilies;
}

const Family* find_family(std::string_view model_type) {
  for (const auto& f : all_families())
    if (f.model_type == model_type) return &f;
  return nullptr;
}

const Family& require_family(std::string_view model_type, const std::string& context) {
  if (const Family* f = find_family(model_type)) return *f;
  std::string known;
  for (const auto& f : all_families()) known += (known.empty() ? "" : ", ") + std::string(f.model_type);
  throw UnsupportedError(context + "unsupported architecture \"" + std::string(model_type) + "\" (supported: " + known + ")");
}

const Family* family_for_config(const nlohmann::json& config) {
  if (!config.is_object()) return nullptr;
  if (config.contains("model_type") && config["model_type"].is_string())
    if (const Family* f = find_family(config["model_type"].get<std::string>())) return f;
  if (config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
      config["architectures"][0].is_string())
    for (const auto& f : all_families())
      if (f.hf_class == config["architectures"][0].get<std::string>()) return &f;
  return nullptr;
}

std::string expand(std::string_view pattern, int layer, int expert) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 3, "{L}") == 0) {
      out += std::to_string(layer);
      i += 2;
    } else if (pattern.compare(i, 3, "{E}") == 0) {
      out += std::to_string(expert);
      i += 2;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

bool match_pattern(std::string_view pattern, std::string_view name, int* layer, int* expert) {
  size_t p = 0, n = 0;
  while (p < pattern.size()) {
    if (pattern.compare(p, 3, "{L}") == 0 || pattern.compare(p, 3, "{E}") == 0) {
      int* target = pattern[p + 1] == 'L' ? layer : expert;
      int value = 0;
      if (!consume_number(name, &n, &value)) return false;
      if (target != nullptr) *target = value;
      p += 3;
    } else {
      if (n >= name.size() || name[n] != pattern[p]) return false;
      ++p;
      ++n;
    }
  }
  return n == name.size();
}

const TensorPattern* find_pattern(const Family& f, Role role, Proj proj) {
  for (const auto& t : f.tensors)
    if (t.role == role && t.proj == proj) return &t;
  return nullptr;
}

}  // namespace moeforge
