#include "compress/usage_plot.hpp"

#include <algorithm>
#include <cmath>

#include "plot/axis.hpp"
#include "plot/colour.hpp"
#include "plot/heat_map.hpp"
#include "plot/labels.hpp"

namespace moeforge {
namespace {

double share(const ExpertLayerStats& s, int e) { return s.tokens > 0 ? s.count[e] / s.tokens : 0.0; }

std::string cell_prefix(int layer, int e) { return "layer " + std::to_string(layer) + " \u00b7 expert " + std::to_string(e); }

HeatPanel file_panel(const CalibrationStats& stats, size_t f, const std::string& label) {
  HeatPanel panel;
  const FileStats& file = stats.files[f];
  panel.heading = label + " (" + format_value(file.tokens, 6) + " tokens)";
  for (int l = 0; l < stats.n_layers; ++l) {
    if (!stats.moe_layer[static_cast<size_t>(l)]) continue;
    const ExpertLayerStats& s = file.experts[static_cast<size_t>(l)];
    panel.row_labels.push_back(std::to_string(l));
    auto& row = panel.rows.emplace_back();
    for (int e = 0; e < stats.n_experts; ++e) {
      HeatCell c;
      c.value = share(s, e);
      c.label = format_fixed(*c.value, 2);  // drawn where it fits
      c.tooltip = cell_prefix(l, e) + " \u00b7 " + label + " \u00b7 share of tokens " + format_value(*c.value, 6) + " (" +
                  format_value(s.count[e], 12) + " of " + format_value(s.tokens, 12) + ")";
      row.push_back(std::move(c));
    }
  }
  return panel;
}

// Each expert in the colour of the file using it most (by share of that file's tokens), mixed
// with white by how evenly the files use it: white-ish = alike, full colour = that file alone.
// Numbers (the file's place in the legend) go into the cells where they fit, for readers who
// cannot tell the colours apart.
HeatPanel comparison_panel(const CalibrationStats& stats, const std::vector<std::string>& labels, bool numbered) {
  HeatPanel panel;
  panel.heading = "which file uses each expert most";
  const double n = static_cast<double>(stats.files.size());
  for (int l = 0; l < stats.n_layers; ++l) {
    if (!stats.moe_layer[static_cast<size_t>(l)]) continue;
    panel.row_labels.push_back(std::to_string(l));
    auto& row = panel.rows.emplace_back();
    for (int e = 0; e < stats.n_experts; ++e) {
      double total = 0, best = -1;
      size_t top = 0;
      for (size_t f = 0; f < stats.files.size(); ++f) {
        double v = share(stats.files[f].experts[static_cast<size_t>(l)], e);
        total += v;
        if (v > best) best = v, top = f;
      }
      HeatCell c;
      if (total <= 0) {
        c.fill = "#ffffff";
        c.tooltip = cell_prefix(l, e) + " \u00b7 not used by any file";
      } else {
        double dominance = best / total, t = (dominance - 1 / n) / (1 - 1 / n);
        // √t: small leads are common and should already show.
        c.fill = hex(mix({255, 255, 255}, parse_hex(category_colour(static_cast<int>(top))), 0.12 + 0.88 * std::sqrt(t)));
        if (numbered) c.label = std::to_string(top + 1);
        c.tooltip = cell_prefix(l, e) + " \u00b7 most used by " + labels[top] + " (" + format_value(dominance, 4) + " of its use)";
      }
      row.push_back(std::move(c));
    }
  }
  return panel;
}

}  // namespace

std::string usage_heat_map_svg(const CalibrationStats& stats, const std::string& model_name, const std::string& metadata) {
  HeatMap map;
  std::vector<std::string> paths;
  for (const auto& f : stats.files) paths.push_back(f.file);
  std::vector<std::string> labels = distinct_path_labels(paths);
  int moe_layers = static_cast<int>(std::count(stats.moe_layer.begin(), stats.moe_layer.end(), true));
  map.title = "observe " + model_name + ": expert usage" + (stats.files.size() > 1 ? " on " + std::to_string(stats.files.size()) + " data files" : "");
  map.subtitle = std::to_string(moe_layers) + " MoE layers \u00d7 " + std::to_string(stats.n_experts) + " experts, top-" +
                 std::to_string(stats.top_k) + " routing: a layer\u2019s shares add up to " + std::to_string(stats.top_k);
  double hi = 0;
  for (const auto& f : stats.files)
    for (int l = 0; l < stats.n_layers; ++l)
      if (stats.moe_layer[static_cast<size_t>(l)])
        for (int e = 0; e < stats.n_experts; ++e) hi = std::max(hi, share(f.experts[static_cast<size_t>(l)], e));
  ColourScale scale;
  scale.caption = "colour: share of the file\u2019s tokens routed to the expert";
  double uniform = stats.n_experts > 0 ? static_cast<double>(stats.top_k) / stats.n_experts : 0;
  scale.hi = std::max(hi, uniform) > 0 ? nice_range(0, std::max(hi, uniform)).hi : 1;
  scale.markers.push_back({uniform, "uniform use (top-k \u00f7 experts = " + format_value(uniform, 3) + ")"});
  map.scale = scale;
  if (stats.files.size() > 1) {
    const bool numbered = heat_label_fits(heat_cell_size(static_cast<size_t>(stats.n_experts)), std::to_string(stats.files.size()), false);
    HeatPanel& p = map.panels.emplace_back(comparison_panel(stats, labels, numbered));
    for (size_t f = 0; f < labels.size(); ++f)
      p.legend.push_back(fill_entry((numbered ? std::to_string(f + 1) + ": " : "") + labels[f], category_colour(static_cast<int>(f))));
    p.note = "Each expert in the colour of the file using the largest share of its tokens: pale = every file uses it alike, full colour = that file alone" +
             std::string(stats.files.size() > static_cast<size_t>(kCategories) ? " (colours repeat after " + std::to_string(kCategories) + " files)." : ".");
  }
  for (size_t f = 0; f < stats.files.size(); ++f) map.panels.push_back(file_panel(stats, f, labels[f]));
  map.footnotes.push_back("Hover a cell for its exact share and token count.");
  return render_heat_map(map, metadata);
}

}  // namespace moeforge
