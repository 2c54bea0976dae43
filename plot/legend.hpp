// The legend of a plot: entries of a swatch (drawn by the plot itself, so a mark in the legend is
// exactly the mark in the plot) and a text, laid out left to right and wrapped at a width.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge {

struct LegendEntry {
  std::string label;
  // Draws the swatch into the square [x, x + size] × [y, y + size].
  std::function<void(SvgDocument& doc, double x, double y, double size)> swatch;
};

LegendEntry fill_entry(const std::string& label, const std::string& fill);
// A line with a marker (0 circle, 1 square, 2 triangle, 3 diamond), as line charts draw series.
LegendEntry line_entry(const std::string& label, const std::string& colour, int marker, const std::string& dash = "");
// Draws a series marker centred at (cx, cy).
void draw_marker(SvgDocument& doc, double cx, double cy, int marker, const std::string& colour, const std::string& tooltip = "");

// Top-left corner at (x, y); `heading` (may be empty) precedes the entries. Returns the area used.
Box draw_legend(SvgDocument& doc, double x, double y, double max_width, const std::vector<LegendEntry>& entries,
                const std::string& heading = "");

}  // namespace moeforge
