// The key of a colour-coded plot: a horizontal ramp with its caption (what the colour means, e.g.
// "REAP score ÷ the layer's highest"), tick values below it, and optional marked values
// (e.g. "uniform" usage) drawn as small triangles with their labels.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge {

struct ColourScale {
  std::string caption;
  double lo = 0, hi = 1;
  std::function<std::string(double t)> colour;  // t in [0, 1] → "#rrggbb"; empty: sequential_colour
  std::vector<double> ticks;                     // empty: nice ticks of [lo, hi]
  std::vector<std::pair<double, std::string>> markers;

  std::string colour_of(double value) const;     // the colour a value is drawn in
  double position(double value) const;           // (value − lo) / (hi − lo), clamped to [0, 1]
};

// Draws the key with its top-left corner at (x, y); returns the area it covers.
Box draw_colour_scale(SvgDocument& doc, double x, double y, double width, const ColourScale& scale);

}  // namespace moeforge
