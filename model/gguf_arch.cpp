#include "model/gguf_arch.hpp"

#include <cmath>

#include "core/error.hpp"

namespace moeforge {
namespace {

using ojson = nlohmann::ordered_json;
using Lay = GgufLayout;

const std::vector<GgufArch> kArchs = {
    {"llama", "llama", true, false, false},       {"mistral", "llama", true, false, false},
    {"mixtral", "llama", true, false, false},     {"qwen2", "qwen2", false, false, false},
    {"qwen3", "qwen3", false, false, false},      {"qwen2_moe", "qwen2moe", false, true, false},
    {"qwen3_moe", "qwen3moe", false, false, false}, {"olmoe", "olmoe", false, true, false},
    {"deepseek_v3", "deepseek2", false, false, false}, {"glm4_moe", "glm4moe", false, false, true},
    {"gpt_oss", "gpt-oss", false, true, true},
};

// Hugging Face → GGUF names shared by every family (a family only ever has its own HF names).
// q/k use kPlain here and become kRopePairs for architectures with rope_pairs.
const std::vector<GgufTensorName> kNames = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
    {"model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight"},
    {"model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight"},
    {"model.layers.{L}.self_attn.q_proj.bias", "blk.{L}.attn_q.bias"},
    {"model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight"},
    {"model.layers.{L}.self_attn.k_proj.bias", "blk.{L}.attn_k.bias"},
    {"model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight"},
    {"model.layers.{L}.self_attn.v_proj.bias", "blk.{L}.attn_v.bias"},
    {"model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight"},
    {"model.layers.{L}.self_attn.o_proj.bias", "blk.{L}.attn_output.bias"},
    {"model.layers.{L}.self_attn.q_norm.weight", "blk.{L}.attn_q_norm.weight"},
    {"model.layers.{L}.self_attn.k_norm.weight", "blk.{L}.attn_k_norm.weight"},
    {"model.layers.{L}.self_attn.sinks", "blk.{L}.attn_sinks.weight"},
    {"model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight"},
    {"model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight"},
    {"model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight"},
    {"model.layers.{L}.mlp.gate_proj.bias", "blk.{L}.ffn_gate.bias"},
    {"model.layers.{L}.mlp.up_proj.bias", "blk.{L}.ffn_up.bias"},
    {"model.layers.{L}.mlp.down_proj.bias", "blk.{L}.ffn_down.bias"},
    // Mixtral
    {"model.layers.{L}.block_sparse_moe.gate.weight", "blk.{L}.ffn_gate_inp.weight"},
    {"model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight", "blk.{L}.ffn_gate_exps.weight", Lay::kStacked},
    {"model.layers.{L}.block_sparse_moe.experts.{E}.w3.weight", "blk.{L}.ffn_up_exps.weight", Lay::kStacked},
    {"model.layers.{L}.block_sparse_moe.experts.{E}.w2.weight", "blk.{L}.ffn_down_exps.weight", Lay::kStacked},
    // Qwen MoE, OLMoE, DeepSeek, GLM
    {"model.layers.{L}.mlp.gate.weight", "blk.{L}.ffn_gate_inp.weight"},
    {"model.layers.{L}.mlp.gate.e_score_correction_bias", "blk.{L}.exp_probs_b.bias"},
    {"model.layers.{L}.mlp.experts.{E}.gate_proj.weight", "blk.{L}.ffn_gate_exps.weight", Lay::kStacked},
    {"model.layers.{L}.mlp.experts.{E}.up_proj.weight", "blk.{L}.ffn_up_exps.weight", Lay::kStacked},
    {"model.layers.{L}.mlp.experts.{E}.down_proj.weight", "blk.{L}.ffn_down_exps.weight", Lay::kStacked},
    {"model.layers.{L}.mlp.shared_expert.gate_proj.weight", "blk.{L}.ffn_gate_shexp.weight"},
    {"model.layers.{L}.mlp.shared_expert.up_proj.weight", "blk.{L}.ffn_up_shexp.weight"},
    {"model.layers.{L}.mlp.shared_expert.down_proj.weight", "blk.{L}.ffn_down_shexp.weight"},
    {"model.layers.{L}.mlp.shared_expert_gate.weight", "blk.{L}.ffn_gate_inp_shexp.weight"},
    {"model.layers.{L}.mlp.shared_experts.gate_proj.weight", "blk.{L}.ffn_gate_shexp.weight"},
    {"model.layers.{L}.mlp.shared_experts.up_proj.weight", "blk.{L}.ffn_up_shexp.weight"},
    {"model.layers.{L}.mlp.shared_experts.down_proj.weight", "blk.{L}.ffn_down_shexp.weight"},
    // DeepSeek MLA
    {"model.layers.{L}.self_attn.q_a_proj.weight", "blk.{L}.attn_q_a.weight"},
    {"model.layers.{L}.self_attn.q_a_layernorm.weight", "blk.{L}.attn_q_a_norm.weight"},
    {"model.layers.{L}.self_attn.q_b_proj.weight", "blk.{L}.attn_q_b.weight"},
    {"model.layers.{L}.self_attn.kv_a_proj_with_mqa.weight", "blk.{L}.attn_kv_a_mqa.weight"},
    {"model.layers.{L}.self_attn.kv_a_layernorm.weight", "blk.{L}.attn_kv_a_norm.weight"},
    {"model.layers.{L}.self_attn.kv_b_proj.weight", "blk.{L}.attn_k_b.weight", Lay::kKvbK},
    {"model.layers.{L}.self_attn.kv_b_proj.weight", "blk.{L}.attn_v_b.weight", Lay::kKvbV},
    // gpt-oss
    {"model.layers.{L}.mlp.router.weight", "blk.{L}.ffn_gate_inp.weight"},
    {"model.layers.{L}.mlp.router.bias", "blk.{L}.ffn_gate_inp.bias"},
    {"model.layers.{L}.mlp.experts.gate_up_proj", "blk.{L}.ffn_gate_exps.weight", Lay::kOssGate},
    {"model.layers.{L}.mlp.experts.gate_up_proj", "blk.{L}.ffn_up_exps.weight", Lay::kOssUp},
    {"model.layers.{L}.mlp.experts.gate_up_proj_blocks", "blk.{L}.ffn_gate_exps.weight", Lay::kOssGate},
    {"model.layers.{L}.mlp.experts.gate_up_proj_blocks", "blk.{L}.ffn_up_exps.weight", Lay::kOssUp},
    {"model.layers.{L}.mlp.experts.gate_up_proj_scales", "blk.{L}.ffn_gate_exps.weight", Lay::kOssGate},
    {"model.layers.{L}.mlp.experts.gate_up_proj_scales", "blk.{L}.ffn_up_exps.weight", Lay::kOssUp},
    {"model.layers.{L}.mlp.experts.gate_up_proj_bias", "blk.{L}.ffn_gate_exps.bias", Lay::kOssGate},
    {"model.layers.{L}.mlp.experts.gate_up_proj_bias", "blk.{L}.ffn_up_exps.bias", Lay::kOssUp},
    {"model.layers.{L}.mlp.experts.down_proj", "blk.{L}.ffn_down_exps.weight", Lay::kOssDown},
    {"model.layers.{L}.mlp.experts.down_proj_blocks", "blk.{L}.ffn_down_exps.weight", Lay::kOssDown},
    {"model.layers.{L}.mlp.experts.down_proj_scales", "blk.{L}.ffn_down_exps.weight", Lay::kOssDown},
    {"model.layers.{L}.mlp.experts.down_proj_bias", "blk.{L}.ffn_down_exps.bias"},
};

ojson u32(int64_t v) { return {{"type", "UINT32"}, {"value", v}}; }
ojson f32(double v) { return {{"type", "FLOAT32"}, {"value", static_cast<float>(v)}}; }
ojson str(const std::string& v) { return {{"type", "STRING"}, {"value", v}}; }
ojson flag(bool v) { return {{"type", "BOOL"}, {"value", v}}; }

bool has(const nlohmann::json& c, const char* key) { return c.is_object() && c.contains(key) && !c[key].is_null(); }

// rope.scaling.* keys for linear and yarn scaling (llama3 is a tensor, see llama3_rope_factors).
void rope_scaling_keys(ojson& m, const std::string& a, const ModelConfig& c) {
  const auto& rs = c.rope_scaling;
  if (!rs.is_object()) return;
  std::string type = rs.value("rope_type", rs.value("type", std::string()));
  if (type == "linear" && rs.contains("factor")) {
    m[a + ".rope.scaling.type"] = str("linear");
    m[a + ".rope.scaling.factor"] = f32(rs["factor"].get<double>());
  } else if (type == "yarn" && rs.contains("factor")) {
    m[a + ".rope.scaling.type"] = str("yarn");
    m[a + ".rope.scaling.factor"] = f32(rs["factor"].get<double>());
    m[a + ".rope.scaling.original_context_length"] = u32(rs.value("original_max_position_embeddings", int64_t{0}));
    if (rs.contains("extrapolation_factor")) m[a + ".rope.scaling.yarn_ext_factor"] = f32(rs["extrapolation_factor"].get<double>());
    if (rs.contains("attention_factor")) m[a + ".rope.scaling.yarn_attn_factor"] = f32(rs["attention_factor"].get<double>());
    if (rs.contains("beta_fast")) m[a + ".rope.scaling.yarn_beta_fast"] = f32(rs["beta_fast"].get<double>());
    if (rs.contains("beta_slow")) m[a + ".rope.scaling.yarn_beta_slow"] = f32(rs["beta_slow"].get<double>());
  }
}

void deepseek_keys(ojson& m, const std::string& a, const ModelConfig& c) {
  m[a + ".leading_dense_block_count"] = u32(config_int_or(c.raw, "first_k_dense_replace", 0));
  m[a + ".vocab_size"] = u32(c.vocab);
  if (c.q_lora_rank > 0) m[a + ".attention.q_lora_rank"] = u32(c.q_lora_rank);
  m[a + ".attention.kv_lora_rank"] = u32(c.kv_lora_rank);
  m[a + ".attention.key_length"] = u32(c.kv_lora_rank + c.qk_rope_head_dim);
  m[a + ".attention.value_length"] = u32(c.kv_lora_rank);
  m[a + ".attention.key_length_mla"] = u32(c.qk_nope_head_dim + c.qk_rope_head_dim);
  m[a + ".attention.value_length_mla"] = u32(c.v_head_dim);
  m[a + ".expert_feed_forward_length"] = u32(c.expert_intermediate);
  m[a + ".expert_shared_count"] = u32(config_int_or(c.raw, "n_shared_experts", 0));
  m[a + ".expert_weights_scale"] = f32(c.routed_scaling_factor);
  if (c.renormalize) m[a + ".expert_weights_norm"] = flag(true);
  // Transformers' DeepseekV3Config has no scoring_func, and without this key llama.cpp uses softmax.
  m[a + ".expert_gating_func"] = u32(2);
  m[a + ".rope.dimension_count"] = u32(c.qk_rope_head_dim);
  if (c.rope_scaling.is_object() && c.rope_scaling.value("type", c.rope_scaling.value("rope_type", std::string())) == "yarn")
    m[a + ".rope.scaling.yarn_log_multiplier"] = f32(0.1 * c.rope_scaling.value("mscale_all_dim", 0.0));
}

// GLM-4.5: like DeepSeek's routing keys on standard attention with partial RoPE. MTP (nextn)
// layers are not carried by moeforge, so the file is what the converter writes with --no-mtp.
void glm4moe_keys(ojson& m, const std::string& a, const ModelConfig& c) {
  m[a + ".rope.dimension_count"] = u32(c.rotary_dim);
  m[a + ".expert_feed_forward_length"] = u32(c.expert_intermediate);
  m[a + ".expert_shared_count"] = u32(config_int_or(c.raw, "n_shared_experts", 0));
  m[a + ".leading_dense_block_count"] = u32(config_int_or(c.raw, "first_k_dense_replace", 0));
  m[a + ".expert_gating_func"] = u32(2);  // sigmoid
  m[a + ".expert_weights_scale"] = f32(c.routed_scaling_factor);
  m[a + ".expert_weights_norm"] = flag(c.renormalize);
  m[a + ".nextn_predict_layers"] = u32(0);
}

// llama.cpp's gpt-oss slides on the even layers (layer 0 first) with one window, and clamps
// SwiGLU at 7 with alpha 1.702 (hard-coded).
template <typename Refuse>
void check_gpt_oss(const ModelConfig& c, const Refuse& refuse) {
  std::optional<int> window;
  for (const auto& w : c.sliding_window)
    if (w) window = *w;
  if (!window) refuse("llama.cpp's gpt-oss needs a sliding_window (attention.sliding_window is required)");
  for (size_t l = 0; l < c.sliding_window.size(); ++l) {
    bool slides = c.sliding_window[l].has_value();
    if (slides != (l % 2 == 0) || (slides && *c.sliding_window[l] != *window))
      refuse("llama.cpp's gpt-oss slides (window " + std::to_string(*window) + ") on the even layers only, but layer " + std::to_string(l) +
             (slides ? " slides with window " + std::to_string(*c.sliding_window[l]) : " attends to the whole context") +
             " (layer_types must alternate sliding_attention, full_attention)");
  }
  if (c.swiglu_limit != 7.0) refuse("llama.cpp's gpt-oss clamps SwiGLU at 7 (swiglu_limit is " + std::to_string(c.swiglu_limit) + ")");
}

}  // namespace

const GgufArch* find_gguf_arch(std::string_view model_type) {
  for (const auto& a : kArchs)
    if (a.model_type == model_type) return &a;
  return nullptr;
}

std::vector<const GgufArch*> gguf_archs_named(std::string_view arch) {
  std::vector<const GgufArch*> out;
  for (const auto& a : kArchs)
    if (a.arch == arch) out.push_back(&a);
  return out;
}

std::string supported_gguf_families() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.model_type);
  return s;
}

std::vector<GgufTensorName> gguf_names_for(const GgufArch& a, const std::string& hf_name) {
  std::vector<GgufTensorName> out;
  for (GgufTensorName n : kNames) {
    if (!match_pattern(n.hf, hf_name, nullptr, nullptr)) continue;
    bool qk = n.gguf == "blk.{L}.attn_q.weight" || n.gguf == "blk.{L}.attn_q.bias" || n.gguf == "blk.{L}.attn_k.weight" ||
              n.gguf == "blk.{L}.attn_k.bias";
    if (a.rope_pairs && qk) n.layout = Lay::kRopePairs;
    out.push_back(n);
  }
  if (out.empty() && hf_name.find(".post_attention_layernorm.weight") != std::string::npos &&
      match_pattern("model.layers.{L}.post_attention_layernorm.weight", hf_name, nullptr, nullptr))
    out.push_back({"model.layers.{L}.post_attention_layernorm.weight",
                   a.post_attention_norm ? "blk.{L}.post_attention_norm.weight" : "blk.{L}.ffn_norm.weight"});
  return out;
}

std::string gguf_name(const GgufTensorName& n, int layer) { return expand(n.gguf, layer); }

void check_gguf_representable(const GgufArch& a, const ModelConfig& c, std::vector<std::string>* warnings) {
  std::string fam(c.family->model_type);
  auto refuse = [&](const std::string& why) { throw UnsupportedError(c.label + ": " + fam + " cannot be written as GGUF: " + why); };
  if (fam == "qwen2_moe" && c.renormalize) refuse("llama.cpp's qwen2moe never renormalises the top-k weights (norm_topk_prob is true)");
  if (fam == "qwen3_moe" && !c.renormalize) refuse("llama.cpp's qwen3moe always renormalises the top-k weights (norm_topk_prob is false)");
  if (fam == "olmoe" && c.renormalize) refuse("llama.cpp's olmoe never renormalises the top-k weights (norm_topk_prob is true)");
  if (fam == "olmoe" && c.n_kv_heads != c.n_heads)
    refuse("llama.cpp's olmoe loads only models with num_key_value_heads == num_attention_heads (found " + std::to_string(c.n_kv_heads) +
           " and " + std::to_string(c.n_heads) + ")");
  if ((fam == "qwen2_moe" || fam == "qwen3_moe") && c.n_moe_layers() != c.n_layers)
    refuse("llama.cpp needs every layer to be MoE (decoder_sparse_step / mlp_only_layers make " +
           std::to_string(c.n_layers - c.n_moe_layers()) + " dense)");
  if (a.arch == "deepseek2" && !c.rope_interleave) refuse("rope_interleave false is not what llama.cpp's deepseek2 computes");
  if (c.rope_scaling.is_object()) {
    std::string type = c.rope_scaling.value("rope_type", c.rope_scaling.value("type", std::string()));
    if (type != "linear" && type != "yarn" && type != "llama3" && type != "default")
      refuse("rope_scaling type \"" + type + "\" is not supported (linear, yarn, llama3 are)");
    if (type == "llama3" && !a.rope_pairs) refuse("llama3 rope scaling is only written for the llama architecture");
  }
  if (a.arch == "gpt-oss") check_gpt_oss(c, refuse);
  const auto& rs = c.rope_scaling;
  if (rs.is_object() && rs.contains("truncate") && rs["truncate"].is_boolean() && !rs["truncate"].get<bool>())
    warnings->push_back(fam + ": rope_scaling truncate false is not stored: llama.cpp rounds YaRN's correction range to whole dimensions "
                              "(as truncate true), so its positions past 0 differ slightly from transformers'");
  for (const auto& w : c.sliding_window)
    if (w && a.arch != "gpt-oss") {
      warnings->push_back(fam + ": sliding_window " + std::to_string(*w) + " is not stored: llama.cpp's " + std::string(a.arch) +
                          " attends to the whole context (outputs agree only on sequences up to the window)");
      break;
    }
}

ojson gguf_model_metadata(const GgufArch& a, const ModelConfig& c, const std::string& name, uint32_t file_type) {
  const std::string p(a.arch);
  const auto& raw = c.raw;
  ojson m = ojson::object();
  m["general.architecture"] = str(p);
  m["general.type"] = str("model");
  m["general.name"] = str(name);
  m[p + ".block_count"] = u32(c.n_layers);
  if (has(raw, "max_position_embeddings")) m[p + ".context_length"] = u32(raw["max_position_embeddings"].get<int64_t>());
  m[p + ".embedding_length"] = u32(c.hidden);
  if (c.intermediate > 0) m[p + ".feed_forward_length"] = u32(c.intermediate);
  m[p + ".attention.head_count"] = u32(c.n_heads);
  m[p + ".attention.head_count_kv"] = u32(a.arch == "deepseek2" ? 1 : c.n_kv_heads);
  rope_scaling_keys(m, p, c);
  m[p + ".rope.freq_base"] = f32(c.rope_theta);
  m[p + ".attention.layer_norm_rms_epsilon"] = f32(c.rms_norm_eps);
  if (c.is_moe()) {
    m[p + ".expert_count"] = u32(c.n_experts);
    m[p + ".expert_used_count"] = u32(c.top_k);
  }
  if (has(raw, "n_group")) m[p + ".expert_group_count"] = u32(c.n_group);
  if (has(raw, "topk_group")) m[p + ".expert_group_used_count"] = u32(c.topk_group);
  // head_dim: written when the config states it, and whenever it differs from hidden / heads.
  if (a.arch != "deepseek2" && (has(raw, "head_dim") || c.head_dim * c.n_heads != c.hidden)) {
    m[p + ".attention.key_length"] = u32(c.head_dim);
    m[p + ".attention.value_length"] = u32(c.head_dim);
  }
  m["general.file_type"] = u32(file_type);
  if (a.arch == "llama") {
    m[p + ".vocab_size"] = u32(c.vocab);
    m[p + ".rope.dimension_count"] = u32(c.head_dim);
  }
  if (a.arch == "qwen2moe" || a.arch == "qwen3moe") m[p + ".expert_feed_forward_length"] = u32(c.expert_intermediate);
  if (a.arch == "qwen2moe") m[p + ".expert_shared_feed_forward_length"] = u32(c.shared_intermediate);
  if (a.arch == "deepseek2") deepseek_keys(m, p, c);
  if (a.arch == "glm4moe") glm4moe_keys(m, p, c);
  if (a.arch == "gpt-oss") {
    for (const auto& w : c.sliding_window)
      if (w) {
        m[p + ".attention.sliding_window"] = u32(*w);
        break;
      }
    m[p + ".expert_feed_forward_length"] = u32(c.expert_intermediate);
  }
  m["general.quantization_version"] = u32(2);
  return m;
}

std::optional<std::vector<float>> llama3_rope_factors(const ModelConfig& c) {
  const auto& rs = c.rope_scaling;
  if (!rs.is_object() || rs.value("rope_type", rs.value("type", std::string())) != "llama3") return std::nullopt;
  double factor = rs.value("factor", 8.0), low = rs.value("low_freq_factor", 1.0), high = rs.value("high_freq_factor", 4.0);
  double old_ctx = rs.value("original_max_position_embeddings", 8192.0);
  double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> out;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    // As the converter: inverse frequencies in float32, the rest in double.
    float freq = 1.0f / std::pow(static_cast<float>(c.rope_theta), static_cast<float>(i) / static_cast<float>(c.head_dim));
    double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) out.push_back(1.0f);
    else if (wavelen > low_wavelen) out.push_back(static_cast<float>(factor));
    else {
      double smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

}  // namespace moeforge
