// What pruning or merging did, per layer and expert: the score, whether the expert was kept
// (and its new index) or dropped, or which merged expert it joined. As JSON (--report) and as an
// SVG heat map (--plot): one row per MoE layer, one cell per expert, colour = score within its
// layer, dropped experts crossed out, merged groups outlined and numbered.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moeforge {

struct ExpertCell {
  double score = 0;
  bool has_score = false;
  bool kept = true;          // pruning: kept or dropped
  bool protected_ = false;
  int new_index = -1;        // index in the output layer (merged: the group's index)
};

struct LayerCells {
  int layer = 0;
  std::vector<ExpertCell> experts;
};

nlohmann::ordered_json expert_report_json(const std::string& verb, const std::string& method, const std::vector<LayerCells>& layers);
std::string expert_heat_map_svg(const std::string& title, const std::vector<LayerCells>& layers, bool merging);

}  // namespace moeforge
