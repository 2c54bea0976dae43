#include "model/model_config.hpp"

#include <algorithm>
#include <climits>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace moeforge {
using nlohmann::json;

namespace {

bool has(const json& c, const std::string& key) { return c.contains(key) && !c[key].is_null(); }

std::vector<bool> moe_layers(const Family& f, const json& c, int n_layers, int n_experts) {
  std::vector<bool> moe(static_cast<size_t>(n_layers), false);
  if (!f.moe || n_experts == 0) return moe;
  for (int l = 0; l < n_layers; ++l) {
    switch (f.moe_layers) {
      case MoeLayerRule::kNone: break;
      case MoeLayerRule::kAll: moe[l] = true; break;
      case MoeLayerRule::kSparseStep: {
        int64_t step = config_int_or(c, "decoder_sparse_step", 1);
        bool mlp_only = false;
        if (c.contains("mlp_only_layers") && c["mlp_only_layers"].is_array())
          for (const auto& v : c["mlp_only_layers"])
            if (v.is_number_integer() && v.get<int>() == l) mlp_only = true;
        moe[l] = !mlp_only && step > 0 && (l + 1) % step == 0;
        break;
      }
      case MoeLayerRule::kFirstKDense: {
        int64_t first_dense = config_int_or(c, "first_k_dense_replace", 0);
        int64_t freq = config_int_or(c, "moe_layer_freq", 1);
        moe[l] = l >= first_dense && freq > 0 && l % freq == 0;
        break;
      }
    }
  }
  return moe;
}

std::vector<std::optional<int>> sliding_windows(const Family& f, const json& c, int n_layers, const std::string& label) {
  std::vector<std::optional<int>> w(static_cast<size_t>(n_layers));
  if (!has(c, "sliding_window") || !c["sliding_window"].is_number_integer()) return w;
  int window = c["sliding_window"].get<int>();
  if (f.window_from_layer_types) {
    // gpt-oss: layer_types says which layers slide (class default: the even ones).
    const json* types = c.contains("layer_types") && c["layer_types"].is_array() ? &c["layer_types"] : nullptr;
    if (types != nullptr && static_cast<int>(types->size()) != n_layers)
      throw FormatError(label + ": layer_types lists " + std::to_string(types->size()) + " layers, num_hidden_layers is " + std::to_string(n_layers));
    for (int l = 0; l < n_layers; ++l) {
      bool slides = types ? (*types)[l] == "sliding_attention" : l % 2 == 0;
      if (slides) w[l] = window;
    }
    return w;
  }
  bool qwen = f.model_type.rfind("qwen", 0) == 0;
  if (qwen && !config_bool_or(c, "use_sliding_window", false)) return w;
  int64_t first = qwen ? config_int_or(c, "max_window_layers", 0) : 0;
  for (int l = 0; l < n_layers; ++l)
    if (l >= first) w[l] = window;
  return w;
}

// RoPE settings in either spelling: transformers 4 writes rope_theta, rope_scaling and
// partial_rotary_factor at the top level; transformers 5 writes rope_parameters {rope_theta,
// rope_type, the scaling keys, partial_rotary_factor}. A "default" rope type means no scaling.
void resolve_rope(const Family& f, const json& c, ModelConfig& m) {
  m.rope_theta = config_number_or(c, "rope_theta", f.default_rope_theta);
  if (has(c, "rope_scaling")) m.rope_scaling = c["rope_scaling"];
  double partial = config_number_or(c, "partial_rotary_factor", -1.0);
  if (c.contains("rope_parameters") && c["rope_parameters"].is_object()) {
    const json& rp = c["rope_parameters"];
    if (!has(c, "rope_theta")) m.rope_theta = config_number_or(rp, "rope_theta", m.rope_theta);
    if (!has(c, "rope_scaling")) m.rope_scaling = rp;
    if (partial < 0) partial = config_number_or(rp, "partial_rotary_factor", -1.0);
  } else if (!c.contains("rope_scaling") && !f.default_rope_scaling.empty()) {
    m.rope_scaling = json::parse(f.default_rope_scaling);
  }
  if (m.rope_scaling.is_object() &&
      m.rope_scaling.value("rope_type", m.rope_scaling.value("type", std::string("default"))) == "default")
    m.rope_scaling = nullptr;
  if (partial < 0) partial = f.default_partial_rotary;
  m.rotary_dim = f.attention == AttentionKind::kMla ? m.qk_rope_head_dim : static_cast<int64_t>(static_cast<double>(m.head_dim) * partial);
  if (m.rotary_dim <= 0 || m.rotary_dim % 2 != 0 || (f.attention != AttentionKind::kMla && m.rotary_dim > m.head_dim))
    throw FormatError(m.label + ": RoPE would rotate " + std::to_string(m.rotary_dim) + " of " + std::to_string(m.head_dim) +
                      " head dimensions (partial_rotary_factor " + nlohmann::json(partial).dump() + "); expected an even number in [2, head_dim]");
}

// DeepSeek-style routing reads these keys; transformers' class defaults differ per family and
// change which experts run, so a config without them is refused rather than guessed.
void require_routing_keys(const Family& f, const json& c, const std::string& label) {
  std::string missing;
  for (const char* key : {"n_group", "topk_group", "num_experts_per_tok"})
    if (!has(c, key)) missing += std::string(missing.empty() ? "" : ", ") + key;
  if (!has(c, std::string(f.experts_key))) missing = std::string(f.experts_key) + (missing.empty() ? "" : ", ") + missing;
  if (!missing.empty())
    throw FormatError(label + ": " + std::string(f.model_type) + " routing needs " + std::string(f.experts_key) +
                      ", num_experts_per_tok, n_group and topk_group; missing: " + missing +
                      "; hint: copy them from the model's published config.json (n_group 1 and topk_group 1 mean no group limit)");
}

void resolve_moe(const Family& f, const json& config, ModelConfig& m) {
  const std::string& label = m.label;
  if (f.router == RouterKind::kSigmoidGroupTopK) require_routing_keys(f, config, label);
  m.experts_key = std::string(f.experts_key);
  if (!has(config, m.experts_key) && !f.experts_key_alias.empty() && has(config, std::string(f.experts_key_alias)))
    m.experts_key = std::string(f.experts_key_alias);
  m.n_experts = static_cast<int>(config_int(config, m.experts_key, label));
  std::string per_token = has(config, "num_experts_per_tok") || !has(config, "experts_per_token") ? "num_experts_per_tok" : "experts_per_token";
  m.top_k = static_cast<int>(config_int(config, per_token, label));
  m.expert_intermediate = config_int(config, std::string(f.expert_ffn_key), label);
  if (m.n_experts <= 0 || m.top_k <= 0 || m.top_k > m.n_experts)
    throw FormatError(label + ": " + per_token + " " + std::to_string(m.top_k) + " must be in [1, " + std::to_string(m.n_experts) + "] (" +
                      m.experts_key + ")");
  m.renormalize = f.renormalize_key.empty() ? true : config_bool_or(config, std::string(f.renormalize_key), f.renormalize_default);
  if (!f.shared_ffn_key.empty()) m.shared_intermediate = config_int_or(config, std::string(f.shared_ffn_key), 0);
  if (f.router == RouterKind::kSigmoidGroupTopK) {
    m.shared_intermediate = config_int_or(config, "n_shared_experts", 0) * m.expert_intermediate;
    m.n_group = static_cast<int>(config_int(config, "n_group", label));
    m.topk_group = static_cast<int>(config_int(config, "topk_group", label));
    if (m.n_group <= 0 || m.topk_group <= 0)
      throw FormatError(label + ": n_group " + std::to_string(m.n_group) + " and topk_group " + std::to_string(m.topk_group) + " must be positive");
    m.routed_scaling_factor = config_number_or(config, "routed_scaling_factor", f.default_routed_scaling);
  }
  const json* q = config.contains("quantization_config") && config["quantization_config"].is_object() ? &config["quantization_config"] : nullptr;
  m.mxfp4_experts = q != nullptr && q->value("quant_method", std::string()) == "mxfp4";
  m.swiglu_limit = config_number_or(config, "swiglu_limit", 7.0);
}

}  // namespace

// Every integer in a config.json fits in 32 bits (layers, sizes, counts, token ids): a larger value
// is refused rather than truncated when it meets an int (2^32 + 3 layers must not become 3).
int64_t checked_int(const json& v, const std::string& key, const std::string& label) {
  if (!v.is_number_integer()) throw FormatError(label + ": \"" + key + "\" must be an integer, found " + v.dump());
  if (v.is_number_unsigned() ? v.get<uint64_t>() > INT32_MAX : (v.get<int64_t>() > INT32_MAX || v.get<int64_t>() < INT32_MIN))
    throw FormatError(label + ": \"" + key + "\" = " + v.dump() + " is out of range; hint: a config.json value, not a model of this size");
  return v.get<int64_t>();
}

int64_t config_int(const json& c, const std::string& key, const std::string& label) {
  if (!has(c, key)) throw FormatError(label + ": missing \"" + key + "\"; hint: a Hugging Face config.json of this family has it");
  return checked_int(c[key], key, label);
}

// The *_or readers fall back only when the key is absent or null; a present value of the wrong
// type is an error (a quoted "1e-5" must not silently become the class default).
int64_t config_int_or(const json& c, const std::string& key, int64_t fallback) {
  return has(c, key) ? checked_int(c[key], key, "config.json") : fallback;
}

double config_number_or(const json& c, const std::string& key, double fallback) {
  if (!has(c, key)) return fallback;
  if (!c[key].is_number()) throw FormatError("config.json: \"" + key + "\" must be a number, found " + c[key].dump());
  return c[key].get<double>();
}

bool config_bool_or(const json& c, const std::string& key, bool fallback) {
  if (!has(c, key)) return fallback;
  if (!c[key].is_boolean()) throw FormatError("config.json: \"" + key + "\" must be true or false, found " + c[key].dump());
  return c[key].get<bool>();
}

std::vector<std::string> expert_count_keys(const ModelConfig& c) {
  std::vector<std::string> keys{std::string(c.family->experts_key)};
  if (!c.family->experts_key_alias.empty() && has(c.raw, std::string(c.family->experts_key_alias)))
    keys.emplace_back(c.family->experts_key_alias);
  return keys;
}

int ModelConfig::n_moe_layers() const { return static_cast<int>(std::count(moe_layer.begin(), moe_layer.end(), true)); }

namespace {
ModelConfig resolve_config_keys(const json& config, const std::string& label) {
  ModelConfig m;
  m.label = label;
  m.raw = config;
  m.family = family_for_config(config);
  if (m.family == nullptr) {
    std::string mt = config.is_object() && config.contains("model_type") ? config["model_type"].dump() : "(no model_type)";
    require_family(mt, label + ": ");  // throws with the list of supported families
  }
  const Family& f = *m.family;
  m.n_layers = static_cast<int>(config_int(config, "num_hidden_layers", label));
  m.hidden = config_int(config, "hidden_size", label);
  m.vocab = config_int(config, "vocab_size", label);
  m.n_heads = static_cast<int>(config_int(config, "num_attention_heads", label));
  m.n_kv_heads = static_cast<int>(config_int_or(config, "num_key_value_heads", m.n_heads));
  if (m.n_layers <= 0 || m.hidden <= 0 || m.vocab <= 0 || m.n_heads <= 0 || m.n_kv_heads <= 0 || m.n_heads % m.n_kv_heads != 0)
    throw FormatError(label + ": inconsistent sizes (layers " + std::to_string(m.n_layers) + ", hidden " + std::to_string(m.hidden) +
                      ", heads " + std::to_string(m.n_heads) + ", kv heads " + std::to_string(m.n_kv_heads) + ")");
  m.head_dim = config_int_or(config, "head_dim", m.hidden / m.n_heads);
  m.intermediate = config_int_or(config, "intermediate_size", 0);
  m.tie_embeddings = config_bool_or(config, "tie_word_embeddings", f.default_tie_word_embeddings);
  m.attention_bias = f.qkv_bias || config_bool_or(config, "attention_bias", false);
  m.mlp_bias = config_bool_or(config, "mlp_bias", false);
  m.rms_norm_eps = config_number_or(config, "rms_norm_eps", f.default_rms_norm_eps);
  m.qk_norm = f.qk_norm_key.empty() || config_bool_or(config, std::string(f.qk_norm_key), false) ? f.qk_norm : QkNormKind::kNone;
  m.attention_sinks = f.attention_sinks;
  m.sliding_window = sliding_windows(f, config, m.n_layers, label);
  if (f.attention == AttentionKind::kMla) {
    m.q_lora_rank = config_int_or(config, "q_lora_rank", 0);
    m.kv_lora_rank = config_int(config, "kv_lora_rank", label);
    m.qk_nope_head_dim = config_int(config, "qk_nope_head_dim", label);
    m.qk_rope_head_dim = config_int(config, "qk_rope_head_dim", label);
    m.v_head_dim = config_int(config, "v_head_dim", label);
    m.rope_interleave = config_bool_or(config, "rope_interleave", true);
  }
  resolve_rope(f, config, m);
  if (f.moe) resolve_moe(f, config, m);
  m.moe_layer = moe_layers(f, config, m.n_layers, m.n_experts);
  return m;
}
}  // namespace

ModelConfig resolve_config(const json& config, const std::string& label) {
  try {
    return resolve_config_keys(config, label);
  } catch (const FormatError& e) {
    // The *_or readers name the key but not the file.
    std::string what = e.what();
    if (what.rfind("config.json: ", 0) == 0) throw FormatError(label + ": " + what.substr(13));
    throw;
  }
}


bool pattern_present(const TensorPattern& p, const ModelConfig& c) {
  const json& raw = c.raw;
  std::string key(p.config_key);
  switch (p.presence) {
    case Presence::kAlways: return true;
    case Presence::kIfUntied: return !c.tie_embeddings;
    case Presence::kIfConfigTrue: return config_bool_or(raw, key, false);
    case Presence::kIfConfigSet: return has(raw, key);
    case Presence::kIfConfigUnset: return !has(raw, key);
    case Presence::kIfConfigPositive: return config_number_or(raw, key, 0) > 0;
    case Presence::kIfMxfp4: return c.mxfp4_experts;
    case Presence::kIfNotMxfp4: return !c.mxfp4_experts;
  }
  return false;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  std::vector<ExpectedTensor> out;
  for (const auto& p : c.family->tensors) {
    if (!pattern_present(p, c)) continue;
    if (p.layers == LayerKind::kGlobal) {
      out.push_back({std::string(p.pattern), &p});
      continue;
    }
    for (int l = 0; l < c.n_layers; ++l) {
      bool moe = c.is_moe_layer(l);
      if ((p.layers == LayerKind::kMoeLayer && !moe) || (p.layers == LayerKind::kDenseLayer && moe)) continue;
      if (p.role == Role::kExpert)
        for (int e = 0; e < c.n_experts; ++e) out.push_back({expand(p.pattern, l, e), &p, l, e});
      else
        out.push_back({expand(p.pattern, l), &p, l});
    }
  }
  std::sort(out.begin(), out.end(), [](const ExpectedTensor& a, const ExpectedTensor& b) { return natural_less(a.name, b.name); });
  return out;
}

std::optional<ExpectedTensor> classify_tensor(const Family& f, const std::string& name) {
  for (const auto& p : f.tensors) {
    int layer = -1, expert = -1;
    if (match_pattern(p.pattern, name, &layer, &expert)) return ExpectedTensor{name, &p, layer, expert};
  }
  return std::nullopt;
}

}  // namespace moeforge
