// Expert pruning: keep the selected experts of every MoE layer (expert_selection.hpp), renumbered
// densely in their original order; their tensors, router rows and correction biases are copied
// bit for bit; the config gets the new expert count (experts-per-token is kept unless it exceeds
// the experts left); the shared expert and everything else are untouched.
#pragma once
#include <optional>
#include <vector>

#include "compress/expert_report.hpp"
#include "compress/expert_selection.hpp"
#include "formats/plan.hpp"

namespace moeforge {

struct PruneResult {
  Plan plan;
  std::vector<LayerCells> cells;  // for --report and --plot
};

PruneResult plan_prune(const Checkpoint& model, const ModelConfig& config, const Selection& selection, const Scores* scores,
                       std::optional<DType> dtype);

}  // namespace moeforge
