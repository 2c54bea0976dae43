#include "cli/router_plot.hpp"

#include <cmath>

#include "plot/bar_chart.hpp"

namespace moeforge {

std::string router_plot_svg(const std::string& title, const std::string& after_name, const std::vector<LayerAccuracy>& after,
                            const std::vector<LayerAccuracy>& before, int experts, const std::string& metadata) {
  BarChart chart{.title = title,
                 .subtitle = "share of data file e\u2019s tokens whose first expert is expert e, on the router data",
                 .value_label = "top-1 routing accuracy",
                 .min = 0.0,
                 .max = 1.0};
  BarSeries old_routers{"input model\u2019s routers", {}}, new_routers{after_name, {}};
  for (const auto& a : after) {
    chart.groups.push_back("layer " + std::to_string(a.layer));
    new_routers.values.push_back(a.accuracy());
    double b = NAN;  // a layer the input model did not route (none when nothing was measured)
    for (const auto& x : before)
      if (x.layer == a.layer) b = x.accuracy();
    old_routers.values.push_back(b);
  }
  if (!before.empty()) chart.series.push_back(std::move(old_routers));
  chart.series.push_back(std::move(new_routers));
  if (experts > 0) chart.reference_lines.push_back({1.0 / experts, "chance (1 / " + std::to_string(experts) + " experts)"});
  return render_bar_chart(chart, metadata);
}

}  // namespace moeforge
