#include "plot/axis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moeforge {
namespace {

double nice_step(double span, int max_ticks) {
  if (!(span > 0) || !std::isfinite(span)) return 1;
  double raw = span / std::max(1, max_ticks - 1);
  double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

}  // namespace

AxisRange nice_range(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  double step = nice_step(hi - lo, max_ticks);
  AxisRange r{std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, {}};
  for (double v = r.lo; v <= r.hi + step * 1e-6; v += step) r.ticks.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return r;
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  std::vector<double> out;
  if (!(hi > lo)) return {lo};
  double step = nice_step(hi - lo, max_ticks);
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return out;
}

std::string tick_label(double v, double step) {
  double a = std::max(std::fabs(v), std::fabs(step));
  if (a >= 1e6 || (a < 1e-3 && a > 0)) return format_value(v, 3);
  int decimals = 0;
  while (decimals < 6 && std::fabs(step * std::pow(10, decimals) - std::round(step * std::pow(10, decimals))) > 1e-6) ++decimals;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void draw_value_axis(SvgDocument& doc, const ValueAxis& axis, double x, double width, const std::string& label) {
  const auto& t = axis.range.ticks;
  double step = t.size() > 1 ? t[1] - t[0] : 1;
  for (double v : t) {
    double y = axis.y_of(v);
    doc.line(x, y, x + width, y, "stroke=\"#e4e4e4\" stroke-width=\"1\"");
    doc.line(x - 4, y, x, y, "stroke=\"#555555\" stroke-width=\"1\"");
    doc.text(x - 6, y + 3.5, tick_label(v, step), {.size = 10, .anchor = Anchor::kEnd});
  }
  doc.line(x, axis.y_top, x, axis.y_bottom, "stroke=\"#555555\" stroke-width=\"1\"");
  if (!label.empty()) doc.text(x, axis.y_top - 14, label, {.size = 11});
}

}  // namespace moeforge
