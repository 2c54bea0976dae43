#include "plot/bar_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "plot/axis.hpp"
#include "plot/colour.hpp"
#include "plot/legend.hpp"

namespace moeforge {
namespace {

constexpr double kPlotHeight = 240, kLabelFont = 9.5, kGroupFont = 11;


ValueAxis make_axis(const BarChart& c, double top) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : c.series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  for (const auto& [v, label] : c.reference_lines) lo = std::min(lo, v), hi = std::max(hi, v);
  lo = c.min.value_or(std::min(lo, 0.0));
  hi = c.max.value_or(hi + (hi - lo) * 0.06);  // headroom for the value labels
  ValueAxis axis{nice_range(lo, hi, 6), top, top + kPlotHeight};
  if (c.min) axis.range.lo = *c.min;
  if (c.max) axis.range.hi = *c.max;
  return axis;
}

struct Layout {
  double bar = 0, group = 0, pad = 0;  // bar width, group width, padding on each side of a group
  bool value_labels = false;
};

Layout layout(const BarChart& c) {
  const double n_series = std::max<double>(1, static_cast<double>(c.series.size()));
  const double n_groups = std::max<double>(1, static_cast<double>(c.groups.size()));
  Layout l;
  l.bar = std::clamp(std::floor(640 / (n_groups * n_series)), 3.0, 44.0);
  double label_w = 0;
  for (const auto& s : c.series)
    for (double v : s.values) label_w = std::max(label_w, text_width(format_fixed(v, c.decimals), kLabelFont));
  l.value_labels = label_w + 2 <= l.bar || (c.series.size() == 1 && label_w <= l.bar + 16);
  double widest_group = 0;
  for (const auto& g : c.groups) widest_group = std::max(widest_group, text_width(g, kGroupFont));
  l.group = std::max(n_series * l.bar + std::max(6.0, l.bar * 0.8), widest_group + 8);
  if (l.value_labels && c.series.size() == 1) l.group = std::max(l.group, label_w + 12);
  l.pad = (l.group - n_series * l.bar) / 2;
  return l;
}

void draw_bars(SvgDocument& doc, const BarChart& c, const ValueAxis& axis, const Layout& l) {
  double zero = axis.y_of(std::clamp(0.0, axis.range.lo, axis.range.hi));
  for (size_t g = 0; g < c.groups.size(); ++g) {
    double gx = static_cast<double>(g) * l.group;
    for (size_t s = 0; s < c.series.size(); ++s) {
      double v = g < c.series[s].values.size() ? c.series[s].values[g] : NAN;
      if (!std::isfinite(v)) continue;
      double x = gx + l.pad + static_cast<double>(s) * l.bar, y = axis.y_of(std::clamp(v, axis.range.lo, axis.range.hi));
      doc.rect(x + 0.5, std::min(y, zero), l.bar - 1, std::fabs(zero - y), "fill=\"" + category_colour(static_cast<int>(s)) + "\"",
               bar_tooltip(c, s, g));
      if (l.value_labels) doc.text(x + l.bar / 2, std::min(y, zero) - 4, format_fixed(v, c.decimals), {.size = kLabelFont, .anchor = Anchor::kMiddle});
    }
    if (c.last_group_is_total && g + 1 == c.groups.size() && g > 0)
      doc.line(gx, axis.y_top, gx, axis.y_bottom + 20, "stroke=\"#999999\" stroke-width=\"1\" stroke-dasharray=\"3 3\"");
    doc.text(gx + l.group / 2, axis.y_bottom + 16, c.groups[g], {.size = kGroupFont, .anchor = Anchor::kMiddle});
  }
}

}  // namespace

std::string bar_tooltip(const BarChart& c, size_t s, size_t g) {
  return c.groups[g] + " · " + c.series[s].name + ": " + format_value(c.series[s].values[g], 8);
}

void draw_bar_chart(SvgDocument& doc, const BarChart& c) {
  doc.text(0, 16, c.title, {.size = 15, .bold = true});
  double y = 22;
  if (!c.subtitle.empty()) {
    doc.text(0, y + 12, c.subtitle, {.size = 11, .fill = "#444444"});
    y += 18;
  }
  Layout l = layout(c);
  double width = static_cast<double>(std::max<size_t>(c.groups.size(), 1)) * l.group;
  ValueAxis axis = make_axis(c, y + 40);
  draw_value_axis(doc, axis, 0, width, c.value_label);
  for (const auto& [v, label] : c.reference_lines) {
    double ry = axis.y_of(v);
    doc.line(0, ry, width, ry, "stroke=\"#333333\" stroke-width=\"1.2\" stroke-dasharray=\"5 3\"");
    doc.text(width + 6, ry + 3.5, label, {.size = 10});
  }
  draw_bars(doc, c, axis, l);
  doc.line(0, axis.y_bottom, width, axis.y_bottom, "stroke=\"#555555\" stroke-width=\"1\"");
  y = axis.y_bottom + 30;
  if (c.series.size() > 1 || (c.series.size() == 1 && !c.series[0].name.empty())) {
    std::vector<LegendEntry> entries;
    for (size_t s = 0; s < c.series.size(); ++s) entries.push_back(fill_entry(c.series[s].name, category_colour(static_cast<int>(s))));
    y = draw_legend(doc, 0, y, std::max(width, 420.0), entries).y1 + 6;
  }
  for (const auto& f : c.footnotes) {
    doc.text(0, y + 11, f, {.size = 10, .fill = "#444444"});
    y += 15;
  }
}

std::string render_bar_chart(const BarChart& chart, const std::string& metadata) {
  SvgDocument doc;
  draw_bar_chart(doc, chart);
  return doc.finish(chart.title, metadata);
}

}  // namespace moeforge
