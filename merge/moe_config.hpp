// The config.json of an MoE built from a dense model: the source config with every field that
// still applies carried over (rope_theta, rope_scaling, rms_norm_eps, head_dim,
// tie_word_embeddings, max_position_embeddings, token ids, biases, sliding window ...), the keys
// the target family needs set explicitly (never left to class defaults, which differ: Mixtral's
// rope_theta default is 1e6, Llama's 1e4), and keys that no longer apply removed.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/plan.hpp"
#include "model/architecture.hpp"

namespace moeforge {

struct MoeShape {
  int experts = 0;
  int experts_per_token = 0;
  int64_t expert_width = 0;  // intermediate size of one routed expert
  int64_t shared_width = 0;  // qwen2_moe shared expert width (0: none)
  bool renormalize = true;   // norm_topk_prob where the family has the key
};

// Output family for an input family when the user names none (llama/mistral → mixtral, ...).
std::string default_moe_arch(const std::string& dense_model_type);
// Families a dense model can be turned into, by input model_type.
std::vector<std::string> allowed_moe_archs(const std::string& dense_model_type);

// Throws UnsupportedError/MismatchError naming `label` when the source cannot be represented.
nlohmann::json moe_config(const nlohmann::json& dense_config, const Family& target, const MoeShape& shape, const std::string& label);

// Keys whose values differ between two configs, as "key: a → b" lines (for --dry-run).
std::vector<std::string> config_diff(const nlohmann::json& before, const nlohmann::json& after);
// A new checkpoint's plan notes: every config change from `before` and every warning (printed too).
void add_plan_notes(Plan& plan, const nlohmann::json& before, const std::vector<std::string>& warnings);

}  // namespace moeforge
