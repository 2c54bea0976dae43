// Grouped bar charts: one group per category (a data file, a layer …), one bar per series in each
// group (a model, a router kind …), series told apart by colour and a legend. Values are written
// above the bars when they fit and are always in each bar's tooltip. Used by `eval --plot`
// (bits per byte per file) and meant for per-layer figures such as routing accuracy.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge {

struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per group; NaN = no bar
};

struct BarChart {
  std::string title, subtitle, value_label;  // value_label: what the bars measure, e.g. "bits per byte"
  std::vector<std::string> groups;
  std::vector<BarSeries> series;
  std::optional<double> min, max;            // value range; default: 0 (or the lowest value) … a nice maximum
  int decimals = 3;                          // decimals of the value labels above the bars
  bool last_group_is_total = false;          // set the last group apart (e.g. "all files")
  std::vector<std::pair<double, std::string>> reference_lines;  // dashed lines across, with labels
  std::vector<std::string> footnotes;
};

// Tooltip of one bar: "GROUP · SERIES: VALUE" (tests read values back from it).
std::string bar_tooltip(const BarChart& chart, size_t series, size_t group);

void draw_bar_chart(SvgDocument& doc, const BarChart& chart);
std::string render_bar_chart(const BarChart& chart, const std::string& metadata);

}  // namespace moeforge
