// Which experts to keep when pruning: scores per layer and expert from calibration statistics
// (REAP and the baselines), a budget per layer (same count everywhere) or one global ranking with
// a floor of experts-per-token per layer, and manual control (protect, keep and drop lists, super
// experts). Ties keep the lower expert index.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/calibration_stats.hpp"
#include "model/model_config.hpp"

namespace moeforge {

enum class Criterion { kReap, kFrequency, kWeightedFrequency, kEan, kEanMean, kEasyEp, kRandom };
Criterion parse_criterion(const std::string& name);
const char* criterion_name(Criterion c);
// What each criterion measures, for --help and reports.
std::string criterion_meaning(Criterion c);

using Scores = std::vector<std::vector<double>>;  // [layer][expert]; empty rows for dense layers

// Scores from statistics (all data files merged); kRandom needs none (stats may be null).
Scores score_experts(Criterion c, const FileStats* stats, const ModelConfig& model, uint64_t seed);

// {"layer": [experts...]} from a JSON file, checked against the model.
using LayerExperts = std::map<int, std::vector<int>>;
LayerExperts read_layer_experts(const std::filesystem::path& path, const ModelConfig& model);

struct SelectionOptions {
  std::optional<double> ratio;  // fraction of experts to drop per layer (floor), in (0, 1)
  std::optional<int> keep;      // experts to keep per layer
  bool global = false;          // one ranking across layers
  LayerExperts protect, keep_list, drop_list;
  bool protect_super_experts = false;
};

struct Selection {
  std::vector<std::vector<int>> kept;        // per layer, in original order
  std::vector<std::vector<bool>> protected_; // per layer and expert
  std::vector<int> super_experts_per_layer;  // how many were protected as super experts
};

Selection select_experts(const ModelConfig& model, const Scores* scores, const FileStats* stats, const SelectionOptions& options);

// REAP's super-expert rule: max activation above max(99.5th percentile, global max / 10).
std::vector<std::vector<bool>> super_experts(const ModelConfig& model, const FileStats& stats);

}  // namespace moeforge
