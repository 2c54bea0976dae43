// `compose --plot` and `fit-router --plot`: each MoE layer's top-1 routing accuracy on the router
// data as grouped bars (one group per layer, one bar for the input model's routers when measured
// and one for the new ones), with the chance level (one over the experts) as a dashed line.
#pragma once
#include <string>
#include <vector>

#include "merge/router_fit_pass.hpp"

namespace moeforge {

// Bar tooltips: "layer L · SERIES: VALUE" (plot/bar_chart.hpp).
std::string router_plot_svg(const std::string& title, const std::string& after_name, const std::vector<LayerAccuracy>& after,
                            const std::vector<LayerAccuracy>& before, int experts, const std::string& metadata);

}  // namespace moeforge
