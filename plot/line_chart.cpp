#include "plot/line_chart.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "plot/axis.hpp"
#include "plot/colour.hpp"
#include "plot/legend.hpp"

namespace moeforge {
namespace {

constexpr double kPanelWidth = 250, kPanelHeight = 190, kGapX = 70, kGapY = 100;
const char* kDashes[] = {"", "6 3", "2 2", "8 3 2 3"};

struct Style {
  std::string colour, dash;
  int marker = 0;
};

// One style per series name, in order of first appearance, the same in every panel.
std::map<std::string, Style> series_styles(const LineChart& c, std::vector<std::string>& order) {
  std::map<std::string, Style> styles;
  for (const auto& p : c.panels)
    for (const auto& s : p.series)
      if (!styles.count(s.name)) {
        int i = static_cast<int>(order.size());
        styles[s.name] = {category_colour(i), kDashes[(i / kCategories) % 4], i % 4};
        order.push_back(s.name);
      }
  return styles;
}

void value_bounds(const LineChart& c, double& xlo, double& xhi, double& ylo, double& yhi) {
  xlo = ylo = INFINITY, xhi = yhi = -INFINITY;
  for (const auto& p : c.panels)
    for (const auto& s : p.series)
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
        if (std::isfinite(s.y[i])) ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
      }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1;
  if (!std::isfinite(ylo)) ylo = 0, yhi = 1;
}

void draw_panel(SvgDocument& doc, const LineChart& c, const LinePanel& p, double x0, double y0, const ValueAxis& axis, double xlo,
                double xhi, const std::map<std::string, Style>& styles) {
  auto x_of = [&](double v) {
    double t = xhi > xlo ? (v - xlo) / (xhi - xlo) : 0.5;
    double inset = 12 + c.dodge * static_cast<double>(p.series.size()) / 2;
    return x0 + inset + (c.x_descending ? 1 - t : t) * (kPanelWidth - 2 * inset);
  };
  doc.text(x0, y0 - 36, p.title, {.size = 12, .bold = true});
  draw_value_axis(doc, axis, x0, kPanelWidth, c.y_label);
  std::vector<double> ticks = c.x_ticks.empty() ? nice_ticks(xlo, xhi, 5) : c.x_ticks;
  double step = ticks.size() > 1 ? std::fabs(ticks[1] - ticks[0]) : 1;
  doc.line(x0, axis.y_bottom, x0 + kPanelWidth, axis.y_bottom, "stroke=\"#555555\" stroke-width=\"1\"");
  for (double t : ticks) {
    doc.line(x_of(t), axis.y_bottom, x_of(t), axis.y_bottom + 4, "stroke=\"#555555\" stroke-width=\"1\"");
    doc.text(x_of(t), axis.y_bottom + 16, tick_label(t, step), {.size = 10, .anchor = Anchor::kMiddle});
  }
  doc.text(x0 + kPanelWidth / 2, axis.y_bottom + 32, c.x_label, {.size = 11, .anchor = Anchor::kMiddle});
  for (size_t k = 0; k < p.series.size(); ++k) {
    const LineSeries& s = p.series[k];
    const Style& st = styles.at(s.name);
    const double shift = c.dodge * (static_cast<double>(k) - (static_cast<double>(p.series.size()) - 1) / 2);
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) pts.emplace_back(x_of(s.x[i]) + shift, axis.y_of(s.y[i]));
    std::string attrs = "stroke=\"" + st.colour + "\" stroke-width=\"1.8\"";
    if (!st.dash.empty()) attrs += " stroke-dasharray=\"" + st.dash + "\"";
    doc.polyline(pts, attrs);
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) draw_marker(doc, x_of(s.x[i]) + shift, axis.y_of(s.y[i]), st.marker, st.colour, point_tooltip(p, s, i));
  }
}

}  // namespace

std::string point_tooltip(const LinePanel& panel, const LineSeries& s, size_t i) {
  return panel.title + " · " + s.name + " · x " + format_value(s.x[i], 6) + ": " + format_value(s.y[i], 8);
}

void draw_line_chart(SvgDocument& doc, const LineChart& c) {
  doc.text(0, 16, c.title, {.size = 15, .bold = true});
  double y = 22;
  if (!c.subtitle.empty()) {
    doc.text(0, y + 12, c.subtitle, {.size = 11, .fill = "#444444"});
    y += 18;
  }
  std::vector<std::string> order;
  auto styles = series_styles(c, order);
  double xlo, xhi, ylo, yhi;
  value_bounds(c, xlo, xhi, ylo, yhi);
  if (!c.x_ticks.empty()) {
    xlo = std::min(xlo, *std::min_element(c.x_ticks.begin(), c.x_ticks.end()));
    xhi = std::max(xhi, *std::max_element(c.x_ticks.begin(), c.x_ticks.end()));
  }
  const int columns = std::max(1, c.columns);
  const double left = 46, top = y + 62;
  double bottom = top;
  for (size_t i = 0; i < c.panels.size(); ++i) {
    double px = left + static_cast<double>(i % static_cast<size_t>(columns)) * (kPanelWidth + kGapX);
    double py = top + static_cast<double>(i / static_cast<size_t>(columns)) * (kPanelHeight + kGapY);
    double pad = (yhi - ylo) * 0.04;  // points at the extremes stay off the axis lines
    ValueAxis axis{nice_range(ylo - pad, yhi + pad, 6), py, py + kPanelHeight};
    draw_panel(doc, c, c.panels[i], px, py, axis, xlo, xhi, styles);
    bottom = std::max(bottom, py + kPanelHeight + 42);
  }
  std::vector<LegendEntry> entries;
  for (const auto& name : order) entries.push_back(line_entry(name, styles[name].colour, styles[name].marker, styles[name].dash));
  double width = std::max(1, std::min(columns, static_cast<int>(c.panels.size()))) * (kPanelWidth + kGapX);
  y = draw_legend(doc, left, bottom + 6, width, entries).y1 + 6;
  for (const auto& f : c.footnotes) {
    doc.text(0, y + 11, f, {.size = 10, .fill = "#444444"});
    y += 15;
  }
}

std::string render_line_chart(const LineChart& chart, const std::string& metadata) {
  SvgDocument doc;
  draw_line_chart(doc, chart);
  return doc.finish(chart.title, metadata);
}

}  // namespace moeforge
