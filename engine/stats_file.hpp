// The calibration statistics file: one safetensors file, readable by any safetensors tool, so a
// GPU job outside moeforge can produce it for models too large for a CPU.
//
//   __metadata__ = {"format": "moeforge-stats", "moeforge_stats": "<JSON description>"}
//   description: {"version": 2, "model", "model_type", "n_layers", "hidden", "n_experts",
//                 "top_k", "moe_layers": [bool per layer], "all_outputs": bool,
//                 "files": [{"path", "tokens"}], "stats": {name: meaning},
//                 "run": what the statistics were computed from (optional, see stats_run.hpp):
//                        model fingerprint, data files with SHA-256, options, shards covered}
//   tensors (all F64), for data file f and layer l:
//     files.{f}.tokens                         [1]
//     files.{f}.layers.{l}.router_input_sum    [H]          every layer
//     files.{f}.layers.{l}.{stat}              MoE layers:  count gate_sum prob_sum reap_sum
//         ean_sum max_act easy_ep_sum logit_sum top1_count [E]; tokens [1]; output_sum [E,H];
//         logit_gram coactivation [E,E]; with all_outputs also all_output_sum [E,H], output_cos_sum [E,E]
//     files.{f}.layers.{l}.router_input_gram   [H,H]        MoE layers, when "router_gram" is true
//         (description key added in version 1 files; absent means false): Σ x xᵀ of the router input
// Every value is a sum, count or maximum (see calibration_stats.hpp), so files merge exactly
// (rules in stats_tensors.hpp). Readers ignore tensors they do not know; merging keeps them.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/output_safety.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/stats_tensors.hpp"
#include "model/model_config.hpp"

namespace moeforge {

// Adds the statistics file to an output transaction (committed by the caller).
void write_stats(const CalibrationStats& stats, OutputTransaction& tx, const std::filesystem::path& path);
void write_stats(const StatsTensors& stats, OutputTransaction& tx, const std::filesystem::path& path);
CalibrationStats read_stats(const std::filesystem::path& path);
// Every tensor of the file (all must be F64) and its description.
StatsTensors read_stats_tensors(const std::filesystem::path& path);

// CalibrationStats ↔ the file's tensors; `label` names the source in errors.
StatsTensors to_tensors(const CalibrationStats& stats);
CalibrationStats from_tensors(const StatsTensors& tensors, const std::string& label);
bool is_stats_file(const std::filesystem::path& path);
// Throws MismatchError when the statistics were not computed on a model of this shape.
void check_stats_match(const CalibrationStats& stats, const ModelConfig& model, const std::string& stats_label);

nlohmann::ordered_json describe_stats(const CalibrationStats& stats, const std::string& path);

}  // namespace moeforge
