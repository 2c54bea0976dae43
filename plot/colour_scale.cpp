#include "plot/colour_scale.hpp"

#include <algorithm>
#include <cmath>

#include "plot/axis.hpp"
#include "plot/colour.hpp"

namespace moeforge {

double ColourScale::position(double value) const {
  if (!(hi > lo) || !std::isfinite(value)) return 0;
  return std::clamp((value - lo) / (hi - lo), 0.0, 1.0);
}

std::string ColourScale::colour_of(double value) const {
  double t = position(value);
  return colour ? colour(t) : sequential_colour(t);
}

Box draw_colour_scale(SvgDocument& doc, double x, double y, double width, const ColourScale& scale) {
  const double bar_y = y + 16, bar_h = 12;
  const int stops = 16;  // the ramps are piecewise linear in 8 pieces: 16 stops follow them closely
  doc.text(x, y + 10, scale.caption, {.size = 11});
  std::string id = doc.unique_id("ramp"), gradient = "<linearGradient id=\"" + id + "\">";
  for (int i = 0; i <= stops; ++i) {
    double t = static_cast<double>(i) / stops;
    gradient += "<stop offset=\"" + coord(t * 100) + "%\" stop-color=\"" + (scale.colour ? scale.colour(t) : sequential_colour(t)) + "\"/>";
  }
  doc.raw(gradient + "</linearGradient>", {x, bar_y, x + width, bar_y + bar_h});
  doc.rect(x, bar_y, width, bar_h, "fill=\"url(#" + id + ")\" stroke=\"#555555\" stroke-width=\"0.8\"");
  std::vector<double> ticks = scale.ticks.empty() ? nice_ticks(scale.lo, scale.hi, std::max(2, static_cast<int>(width / 60) + 1)) : scale.ticks;
  double step = ticks.size() > 1 ? ticks[1] - ticks[0] : (scale.hi - scale.lo);
  double y_end = bar_y + bar_h;
  for (double v : ticks) {
    double tx = x + width * scale.position(v);
    doc.line(tx, bar_y + bar_h, tx, bar_y + bar_h + 4, "stroke=\"#555555\" stroke-width=\"1\"");
    doc.text(tx, bar_y + bar_h + 15, tick_label(v, step), {.size = 10, .anchor = Anchor::kMiddle});
    y_end = bar_y + bar_h + 18;
  }
  // Marked values: a black line across the ramp, and the label on a line of its own below.
  for (const auto& [v, label] : scale.markers) {
    double mx = x + width * scale.position(v);
    doc.line(mx, bar_y - 3, mx, bar_y + bar_h + 3, "stroke=\"#000000\" stroke-width=\"2\"");
    // The label runs to the right of the mark when it fits there, else to its left.
    std::string right_text = "\u2191 " + label, left_text = label + " \u2191";
    bool right = mx - 4 + text_width(right_text, 10) <= x + width || mx + 4 - text_width(left_text, 10) < x;
    doc.text(right ? mx - 4 : mx + 4, y_end + 13, right ? right_text : left_text, {.size = 10, .anchor = right ? Anchor::kStart : Anchor::kEnd});
  }
  if (!scale.markers.empty()) y_end += 16;
  return {x, y, x + width, y_end};
}

}  // namespace moeforge
