// What pruning or merging did, per layer and expert: the score, whether the expert was kept
// (and its new index) or dropped, or which merged expert it joined. As JSON (--report) and as an
// SVG heat map (--plot, drawn by plot/heat_map): one row per MoE layer, one cell per expert; for
// pruning colour = score relative to the layer's highest, dropped experts grey (and crossed out
// where cells are wide enough), protected ones framed; for merging colour = share of tokens
// routed, a band and number for the merged expert each joins. Every mark is in the legend.
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
struct ExpertPlotInfo {
  std::string verb;           // "prune" or "merge-experts"
  std::string model;          // a short model name for the title
  std::string method;         // criterion, "manual list", or merging method
  std::string criterion;      // pruning: the criterion that gave the scores (its name)
  std::string criterion_meaning;
  bool merging = false;
  bool global_scale = false;  // pruning with one ranking across layers: one colour scale for all
  std::string metadata;       // into the SVG's <metadata>: the command that made it
};

// Tooltip of a cell, which also states its value for readers of the SVG (and for tests):
// "layer L · expert E · NAME VALUE · kept as N | dropped | merged into N (with …) [· protected]".
std::string expert_heat_map_svg(const ExpertPlotInfo& info, const std::vector<LayerCells>& layers);

}  // namespace moeforge
