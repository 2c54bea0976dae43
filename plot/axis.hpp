// Value axes of the bar and line charts: "nice" tick values (1, 2, 5 × 10^k steps) and a vertical
// axis with tick labels and light grid lines across the plot area.
#pragma once
#include <string>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge {

struct AxisRange {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
};

// A range holding [lo, hi] whose ends are ticks, with at most about `max_ticks` ticks.
AxisRange nice_range(double lo, double hi, int max_ticks = 6);
// Ticks (multiples of a 1-2-5 step) inside [lo, hi], without widening it.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 6);
// A tick label: as few decimals as the step needs ("0.25", "3", "1e5").
std::string tick_label(double v, double step);

// Draws the axis line at x from y_bottom (value lo) to y_top (value hi), tick labels on its left
// and grid lines across to x + width. Returns the pixel y of a value.
struct ValueAxis {
  AxisRange range;
  double y_top = 0, y_bottom = 0;
  double y_of(double v) const { return y_bottom - (v - range.lo) / (range.hi - range.lo) * (y_bottom - y_top); }
};
void draw_value_axis(SvgDocument& doc, const ValueAxis& axis, double x, double width, const std::string& label);

}  // namespace moeforge
