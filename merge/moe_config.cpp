#include "merge/moe_config.hpp"

#include <set>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"

namespace moeforge {
using nlohmann::json;

namespace {

struct Conversion {
  const char* from;
  const char* to;
};
// Which dense families become which MoE families; the first match is the default.
constexpr Conversion kConversions[] = {
    {"llama", "mixtral"}, {"mistral", "mixtral"}, {"qwen2", "qwen2_moe"}, {"qwen3", "qwen3_moe"},
    {"llama", "olmoe"},   {"llama", "qwen2_moe"}, {"mistral", "qwen2_moe"},  // as mergekit-moe builds with a shared expert
};

// The keys transformers writes for each target family (its config class's attributes, as in the
// fixtures), with the class default used when the source config does not have the key.
struct Schema {
  const char* model_type;
  std::vector<std::pair<const char*, json>> keys;
};

const std::vector<Schema>& schemas() {
  static const std::vector<std::pair<const char*, json>> kCommon = {
      {"architectures", nullptr}, {"attention_dropout", 0.0}, {"bos_token_id", nullptr}, {"eos_token_id", nullptr},
      {"hidden_act", "silu"}, {"hidden_size", nullptr}, {"initializer_range", 0.02}, {"intermediate_size", nullptr},
      {"max_position_embeddings", nullptr}, {"model_type", nullptr}, {"num_attention_heads", nullptr}, {"num_experts_per_tok", nullptr},
      {"num_hidden_layers", nullptr}, {"num_key_value_heads", nullptr}, {"output_router_logits", false}, {"rms_norm_eps", nullptr},
      {"rope_theta", nullptr}, {"router_aux_loss_coef", 0.001}, {"tie_word_embeddings", false}, {"torch_dtype", nullptr},
      {"transformers_version", nullptr}, {"use_cache", true}, {"vocab_size", nullptr}};
  auto with_keys = [&](std::vector<std::pair<const char*, json>> extra) {
    auto all = kCommon;
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  static const std::vector<Schema> kSchemas = {
      {"mixtral", with_keys({{"num_local_experts", nullptr}, {"router_jitter_noise", 0.0}, {"sliding_window", nullptr}})},
      {"qwen2_moe", with_keys({{"decoder_sparse_step", 1}, {"max_window_layers", 28}, {"mlp_only_layers", json::array()},
                               {"moe_intermediate_size", nullptr}, {"norm_topk_prob", false}, {"num_experts", nullptr},
                               {"rope_scaling", nullptr}, {"shared_expert_intermediate_size", nullptr}, {"sliding_window", nullptr},
                               {"use_sliding_window", false}})},
      {"qwen3_moe", with_keys({{"attention_bias", false}, {"decoder_sparse_step", 1}, {"head_dim", nullptr}, {"max_window_layers", 28},
                               {"mlp_only_layers", json::array()}, {"moe_intermediate_size", nullptr}, {"norm_topk_prob", false},
                               {"num_experts", nullptr}, {"rope_scaling", nullptr}, {"sliding_window", nullptr}, {"use_sliding_window", false}})},
      {"olmoe", with_keys({{"attention_bias", false}, {"clip_qkv", nullptr}, {"norm_topk_prob", false}, {"num_experts", nullptr},
                           {"pad_token_id", nullptr}, {"rope_scaling", nullptr}})},
  };
  return kSchemas;
}

bool truthy(const json& c, const char* key) { return c.contains(key) && c[key].is_boolean() && c[key].get<bool>(); }

const Schema& schema_of(const std::string& model_type) {
  for (const auto& s : schemas())
    if (model_type == s.model_type) return s;
  throw UnsupportedError("no config schema for " + model_type);
}

}  // namespace

std::string default_moe_arch(const std::string& dense) {
  for (const auto& c : kConversions)
    if (dense == c.from) return c.to;
  return "";
}

std::vector<std::string> allowed_moe_archs(const std::string& dense) {
  std::vector<std::string> out;
  for (const auto& c : kConversions)
    if (dense == c.from) out.push_back(c.to);
  return out;
}

json moe_config(const json& dense, const Family& target, const MoeShape& s, const std::string& label) {
  std::string from = dense.value("model_type", "");
  std::string to(target.model_type);
  auto allowed = allowed_moe_archs(from);
  if (std::find(allowed.begin(), allowed.end(), to) == allowed.end())
    throw UnsupportedError(label + ": a " + from + " model cannot become " + to + " (possible: " +
                           (allowed.empty() ? std::string("none") : join(allowed, ", ")) + ")");
  if (truthy(dense, "mlp_bias")) throw UnsupportedError(label + ": mlp_bias is true, but " + to + " experts have no biases");
  bool target_has_attention_bias = target.qkv_bias || to == "qwen3_moe" || to == "olmoe";
  if (truthy(dense, "attention_bias") && !target_has_attention_bias)
    throw UnsupportedError(label + ": attention_bias is true, but " + to + " attention has no biases");
  if (to == "olmoe" && dense.contains("sliding_window") && !dense["sliding_window"].is_null())
    throw UnsupportedError(label + ": sliding_window " + dense["sliding_window"].dump() + ", but olmoe has no sliding-window attention");

  const Family& source = *find_family(from);
  json set = json::object();  // what the MoE needs, whatever the source says
  set["model_type"] = to;
  set["architectures"] = json::array({std::string(target.hf_class)});
  set[std::string(target.experts_key)] = s.experts;
  set["num_experts_per_tok"] = s.experts_per_token;
  // Values a class default would silently change are written explicitly.
  set["rms_norm_eps"] = dense.value("rms_norm_eps", source.default_rms_norm_eps);
  set["rope_theta"] = dense.value("rope_theta", source.default_rope_theta);
  set["tie_word_embeddings"] = dense.value("tie_word_embeddings", source.default_tie_word_embeddings);
  if (to == "mixtral" || to == "olmoe") {
    set["intermediate_size"] = s.expert_width;
  } else {
    set["moe_intermediate_size"] = s.expert_width;
    set["decoder_sparse_step"] = 1;
    set["mlp_only_layers"] = json::array();
  }
  if (to != "mixtral") set["norm_topk_prob"] = s.renormalize;
  if (to == "qwen2_moe") set["shared_expert_intermediate_size"] = s.shared_width;
  if (to == "olmoe") set["router_aux_loss_coef"] = dense.value("router_aux_loss_coef", 0.01);

  json c = json::object();
  for (const auto& [key, fallback] : schema_of(to).keys) {
    if (set.contains(key)) c[key] = set[key];
    else if (dense.contains(key)) c[key] = dense[key];
    else if (!fallback.is_null() || std::string(key) != "transformers_version") c[key] = fallback;
  }
  // Keys outside the 4.46 schemas that newer transformers honour, written only when they matter.
  int64_t heads = dense.value("num_attention_heads", int64_t{1});
  if (dense.contains("head_dim") && !dense["head_dim"].is_null() && !c.contains("head_dim") &&
      dense["head_dim"].get<int64_t>() != dense.value("hidden_size", int64_t{0}) / heads)
    c["head_dim"] = dense["head_dim"];
  if (dense.contains("rope_scaling") && !dense["rope_scaling"].is_null()) c["rope_scaling"] = dense["rope_scaling"];
  if (dense.contains("pad_token_id") && !c.contains("pad_token_id")) c["pad_token_id"] = dense["pad_token_id"];
  return c;
}

std::vector<std::string> config_diff(const json& before, const json& after) {
  std::set<std::string> keys;
  for (const auto& [k, v] : before.items()) keys.insert(k);
  for (const auto& [k, v] : after.items()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    bool a = before.contains(k), b = after.contains(k);
    if (a && b && before[k] == after[k]) continue;
    out.push_back(k + ": " + (a ? before[k].dump() : std::string("(absent)")) + " → " + (b ? after[k].dump() : std::string("(removed)")));
  }
  return out;
}

void add_plan_notes(Plan& plan, const json& before, const std::vector<std::string>& warnings) {
  for (const auto& line : config_diff(before, plan.config)) plan.notes.push_back("config " + line);
  for (const auto& w : warnings) {
    warn(w);
    plan.notes.push_back("warning: " + w);
  }
}

}  // namespace moeforge
