#include "plot/heat_map.hpp"

#include <algorithm>
#include <cmath>

#include "plot/colour.hpp"

namespace moeforge {
namespace {

constexpr double kTargetWidth = 1100;  // pixels the grid aims at
constexpr double kIndexFont = 10, kRowFont = 10;

// Every n-th column is labelled: the smallest power of two leaving room for the widest label.
int column_label_step(size_t columns, int cell_width) {
  double need = text_width(std::to_string(columns > 0 ? columns - 1 : 0), kIndexFont) + 6;
  int step = 1;
  while (step * cell_width < need) step *= 2;
  return step;
}

std::string cell_fill(const HeatCell& c, const ColourScale* scale) {
  if (!c.fill.empty()) return c.fill;
  if (!c.value || !scale) return c.greyed ? "#bdbdbd" : kNoValueFill;
  return c.greyed ? grey_colour(scale->position(*c.value)) : scale->colour_of(*c.value);
}

double band_height(double h) { return std::max(3.0, std::round(h / 4)); }
double label_font(double h) { return std::min(11.0, h * 0.55); }
bool label_fits(double w, double h, const std::string& label, bool band) {
  double font = label_font(h);
  return font >= 7 && text_width(label, font) + 4 <= w && h - (band ? band_height(h) : 0) >= font + 2;
}

struct Geometry {
  CellSize cell;
  size_t columns = 0;
  double gutter = 0;  // width left of the grid (row labels)
  double grid_width() const { return static_cast<double>(columns) * cell.width; }
};

double draw_column_header(SvgDocument& doc, const HeatMap& map, const Geometry& g, double y) {
  int step = column_label_step(g.columns, g.cell.width);
  std::string caption = map.column_axis + (step > 1 ? " (index of every " + std::to_string(step) + "th shown)" : "");
  doc.text(0, y + 10, caption, {.size = kIndexFont, .fill = "#444444"});
  y += 26;
  doc.text(-8, y, map.row_axis, {.size = kIndexFont, .anchor = Anchor::kEnd, .fill = "#444444"});
  for (size_t e = 0; e < g.columns; e += static_cast<size_t>(step)) {
    double cx = static_cast<double>(e) * g.cell.width + (g.cell.width - g.cell.gap) / 2.0;
    doc.text(cx, y, std::to_string(e), {.size = kIndexFont, .anchor = Anchor::kMiddle});
    if (step > 1) doc.line(cx, y + 3, cx, y + 7, "stroke=\"#555555\" stroke-width=\"1\"");
  }
  if (!map.notes_header.empty()) doc.text(g.grid_width() + 8, y, map.notes_header, {.size = kIndexFont, .fill = "#444444"});
  return y + 8;
}

double draw_panel(SvgDocument& doc, const HeatMap& map, const HeatPanel& panel, const Geometry& g, double y) {
  const ColourScale* scale = map.scale ? &*map.scale : nullptr;
  if (!panel.heading.empty()) {
    doc.text(-g.gutter, y + 13, panel.heading, {.size = 12.5, .bold = true});
    y += 20;
  }
  y = draw_column_header(doc, map, g, y);
  BandPaths bands;
  const double w = g.cell.width - g.cell.gap, h = g.cell.height - 1;
  for (size_t r = 0; r < panel.rows.size(); ++r) {
    double ry = y + static_cast<double>(r) * g.cell.height;
    double baseline = ry + h / 2 + kRowFont * 0.35;
    if (r < panel.row_labels.size()) doc.text(-8, baseline, panel.row_labels[r], {.size = kRowFont, .anchor = Anchor::kEnd});
    for (size_t e = 0; e < panel.rows[r].size(); ++e)
      draw_heat_cell(doc, static_cast<double>(e) * g.cell.width, ry, w, h, panel.rows[r][e], scale, &bands);
    if (r < panel.row_notes.size() && !panel.row_notes[r].empty())
      doc.text(g.grid_width() + 8, baseline, panel.row_notes[r], {.size = kRowFont, .fill = "#444444"});
  }
  bands.draw(doc);
  y += static_cast<double>(panel.rows.size()) * g.cell.height;
  if (!panel.legend.empty()) y = draw_legend(doc, 0, y + 10, std::max(g.grid_width(), 480.0), panel.legend).y1;
  if (!panel.note.empty()) {
    doc.text(0, y + 14, panel.note, {.size = 10, .fill = "#444444"});
    y += 18;
  }
  return y;
}

}  // namespace

void BandPaths::add(const std::string& colour, double x, double y, double w, double h) {
  auto [it, fresh] = paths_.try_emplace(colour);
  auto& [d, box] = it->second;
  Box b{x, y, x + w, y + h};
  box = fresh ? b : Box{std::min(box.x0, b.x0), std::min(box.y0, b.y0), std::max(box.x1, b.x1), std::max(box.y1, b.y1)};
  d += "M" + coord(x) + " " + coord(y) + "h" + coord(w) + "v" + coord(h) + "h" + coord(-w) + "z";
}

void BandPaths::draw(SvgDocument& doc) {
  for (const auto& [colour, path] : paths_)
    doc.raw("<path d=\"" + path.first + "\" fill=\"" + colour + "\" pointer-events=\"none\"/>", path.second);
  paths_.clear();
}

CellSize heat_cell_size(size_t columns) {
  int w = static_cast<int>(std::clamp(std::floor(kTargetWidth / static_cast<double>(std::max<size_t>(columns, 1))), 4.0, 36.0));
  return {w, std::max(w, 12), w >= 8 ? 1 : 0};
}

bool heat_label_fits(const CellSize& size, const std::string& label, bool band) {
  return label_fits(size.width - size.gap, size.height - 1, label, band);
}

void draw_heat_cell(SvgDocument& doc, double x, double y, double w, double h, const HeatCell& c, const ColourScale* scale, BandPaths* bands) {
  std::string fill = cell_fill(c, scale);
  doc.rect(x, y, w, h, "fill=\"" + fill + "\"", c.tooltip);
  const std::string passive = " pointer-events=\"none\"";
  if (!c.band.empty()) {
    double bh = band_height(h);
    if (bands != nullptr) bands->add(c.band, x, y + h - bh, w, bh);
    else doc.rect(x, y + h - bh, w, bh, "fill=\"" + c.band + "\"" + passive);
  }
  const bool labelled = !c.label.empty() && label_fits(w, h, c.label, !c.band.empty());
  if (c.crossed && w >= 9) {
    double m = std::max(2.0, w / 6);
    doc.raw("<path d=\"M" + coord(x + m) + " " + coord(y + m) + " L" + coord(x + w - m) + " " + coord(y + h - m) + " M" + coord(x + w - m) +
                " " + coord(y + m) + " L" + coord(x + m) + " " + coord(y + h - m) + "\" stroke=\"#b2182b\" stroke-width=\"" +
                (w >= 16 ? "2" : "1.3") + "\"" + (labelled ? " stroke-opacity=\"0.45\"" : "") + passive + "/>",
            {x, y, x + w, y + h});
  }
  if (c.outlined) {
    double sw = w >= 8 ? 2 : 1;
    doc.rect(x + sw / 2, y + sw / 2, w - sw, h - sw, "fill=\"none\" stroke=\"#000000\" stroke-width=\"" + coord(sw) + "\"" + passive);
  }
  if (labelled) {
    double font = label_font(h), band_h = c.band.empty() ? 0 : band_height(h);
    doc.text(x + w / 2, y + (h - band_h) / 2 + font * 0.35, c.label,
             {.size = font, .anchor = Anchor::kMiddle, .fill = text_colour_on(fill), .extra = passive.substr(1)});
  }
}

LegendEntry cell_entry(const std::string& label, const HeatCell& sample, const std::optional<ColourScale>& scale) {
  return {label, [sample, scale](SvgDocument& doc, double x, double y, double size) {
            draw_heat_cell(doc, x, y - 2, size, size + 4, sample, scale ? &*scale : nullptr, nullptr);
          }};
}

void draw_heat_map(SvgDocument& doc, const HeatMap& map) {
  Geometry g;
  for (const auto& p : map.panels)
    for (const auto& r : p.rows) g.columns = std::max(g.columns, r.size());
  g.cell = heat_cell_size(g.columns);
  g.gutter = text_width(map.row_axis, kIndexFont) + 8;
  for (const auto& p : map.panels)
    for (const auto& l : p.row_labels) g.gutter = std::max(g.gutter, text_width(l, kRowFont) + 8);
  double y = 0;
  doc.text(-g.gutter, y + 16, map.title, {.size = 15, .bold = true});
  y += 22;
  if (!map.subtitle.empty()) {
    doc.text(-g.gutter, y + 12, map.subtitle, {.size = 11, .fill = "#444444"});
    y += 18;
  }
  for (const auto& p : map.panels) y = draw_panel(doc, map, p, g, y + 8) + 10;
  y += 8;
  double width = std::max(g.grid_width(), 480.0);
  if (map.scale) y = draw_colour_scale(doc, 0, y, std::clamp(g.grid_width(), 240.0, 360.0), *map.scale).y1 + 12;
  if (!map.legend.empty()) y = draw_legend(doc, 0, y, width, map.legend).y1 + 8;
  for (const auto& f : map.footnotes) {
    doc.text(0, y + 11, f, {.size = 10, .fill = "#444444"});
    y += 15;
  }
}

std::string render_heat_map(const HeatMap& map, const std::string& metadata) {
  SvgDocument doc;
  draw_heat_map(doc, map);
  return doc.finish(map.title, metadata);
}

}  // namespace moeforge
