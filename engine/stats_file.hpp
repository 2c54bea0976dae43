// The calibration statistics file: one safetensors file, readable by any safetensors tool, so a
// GPU job outside moeforge can produce it for models too large for a CPU.
//
//   __metadata__ = {"format": "moeforge-stats", "moeforge_stats": "<JSON description>"}
//   description: {"version": 1, "model", "model_type", "n_layers", "hidden", "n_experts",
//                 "top_k", "moe_layers": [bool per layer], "all_outputs": bool,
//                 "files": [{"path", "tokens"}], "stats": {name: meaning}}
//   tensors (all F64), for data file f and layer l:
//     files.{f}.tokens                         [1]
//     files.{f}.layers.{l}.router_input_sum    [H]          every layer
//     files.{f}.layers.{l}.{stat}              MoE layers:  count gate_sum prob_sum reap_sum
//         ean_sum max_act easy_ep_sum logit_sum top1_count [E]; tokens [1]; output_sum [E,H];
//         logit_gram coactivation [E,E]; with all_outputs also all_output_sum [E,H], output_cos_sum [E,E]
// Every value is a sum, count or maximum (see calibration_stats.hpp), so files merge exactly.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/output_safety.hpp"
#include "engine/calibration_stats.hpp"
#include "model/model_config.hpp"

namespace moeforge {

// Adds the statistics file to an output transaction (committed by the caller).
void write_stats(const CalibrationStats& stats, OutputTransaction& tx, const std::filesystem::path& path);
CalibrationStats read_stats(const std::filesystem::path& path);
bool is_stats_file(const std::filesystem::path& path);
// Throws MismatchError when the statistics were not computed on a model of this shape.
void check_stats_match(const CalibrationStats& stats, const ModelConfig& model, const std::string& stats_label);

nlohmann::ordered_json describe_stats(const CalibrationStats& stats, const std::string& path);

}  // namespace moeforge
