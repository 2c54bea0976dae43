// `eval --plot`: bits per byte (bits per token when some file has no byte count) per data file as
// grouped bars, one bar per model in each group, and a last group for all files together.
#pragma once
#include <string>
#include <vector>

#include "engine/evaluation.hpp"

namespace moeforge {

struct EvalRun {
  std::string model;                // a short name for the legend
  std::vector<EvalResult> results;  // evaluate(): one per file, then the total
};

// Bar tooltips: "FILE · MODEL: VALUE" (plot/bar_chart.hpp).
std::string eval_plot_svg(const std::vector<EvalRun>& runs, const std::string& metadata);

}  // namespace moeforge
