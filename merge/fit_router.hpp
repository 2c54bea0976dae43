// fit-router: the routers of an existing MoE (composed earlier, or any MoE whose experts the user
// assigns to data) re-fitted from one data file per expert. Every other tensor is copied bit for
// bit, config.json and the side files unchanged. From data, the routers are fitted layer by layer
// in the MoE itself (router_fit_pass.hpp); from statistics files (observe --router-gram, ridge
// only) every layer is fitted from the inputs the statistics saw, i.e. with the model's own
// routers in the earlier layers — repeating observe + fit-router r times makes the first r MoE
// layers equal the layer-by-layer fit.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "merge/router_fit_pass.hpp"

namespace moeforge {

struct FitRouterSpec {
  const Checkpoint* model = nullptr;
  std::string label;  // the output, for messages
  RouterMethod method = RouterMethod::kRidge;
  FitOptions options;
  std::vector<DataFile> data;            // one per expert, in expert order
  std::vector<CalibrationStats> stats;   // or statistics files (ridge)
  std::vector<std::string> stats_paths;
  std::vector<int> class_of_stats;       // the expert each statistics file belongs to
  bool fit = true;                       // false: plan only (a dry run), routers left at zero
  bool measure_before = false;           // routing accuracy of the input model too (needs data)
  int threads = 0;
};

struct FitRouterResult {
  Plan plan;
  std::vector<LayerAccuracy> before, after;
};

FitRouterResult plan_fit_router(const FitRouterSpec& spec);

}  // namespace moeforge
