// Line charts in small multiples: panels side by side (wrapped into rows), each with its own
// series of (x, y) points, sharing one value range, one x axis and one legend, so a series (a
// pruning criterion, a merging method …) has the same colour and marker in every panel. Used for
// the quality figures of bench/ (bits per byte against experts kept).
#pragma once
#include <string>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge {

struct LineSeries {
  std::string name;
  std::vector<double> x, y;  // y may be NaN (no point)
};

struct LinePanel {
  std::string title;
  std::vector<LineSeries> series;
};

struct LineChart {
  std::string title, subtitle, x_label, y_label;
  std::vector<LinePanel> panels;
  int columns = 3;                   // panels per row
  std::vector<double> x_ticks;       // empty: nice ticks
  bool x_descending = false;         // larger x on the left (e.g. experts kept, falling)
  double dodge = 0;                  // pixels between series at the same x, so equal points stay visible
  std::vector<std::string> footnotes;
};

// Tooltip of one point: "PANEL · SERIES · x X: Y" (tests read values back from it).
std::string point_tooltip(const LinePanel& panel, const LineSeries& series, size_t i);

void draw_line_chart(SvgDocument& doc, const LineChart& chart);
std::string render_line_chart(const LineChart& chart, const std::string& metadata);

}  // namespace moeforge
