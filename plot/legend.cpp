#include "plot/legend.hpp"

#include <algorithm>

namespace moeforge {

LegendEntry fill_entry(const std::string& label, const std::string& fill) {
  return {label, [fill](SvgDocument& doc, double x, double y, double size) {
            doc.rect(x, y, size, size, "fill=\"" + fill + "\" stroke=\"#555555\" stroke-width=\"0.5\"");
          }};
}

LegendEntry line_entry(const std::string& label, const std::string& colour, int marker, const std::string& dash) {
  return {label, [=](SvgDocument& doc, double x, double y, double size) {
            std::string attrs = "stroke=\"" + colour + "\" stroke-width=\"2\"";
            if (!dash.empty()) attrs += " stroke-dasharray=\"" + dash + "\"";
            doc.line(x - 4, y + size / 2, x + size + 3, y + size / 2, attrs);
            draw_marker(doc, x + size / 2, y + size / 2, marker, colour);
          }};
}

void draw_marker(SvgDocument& doc, double cx, double cy, int marker, const std::string& colour, const std::string& tooltip) {
  const double r = 3.5;
  std::string fill = "fill=\"" + colour + "\" stroke=\"#ffffff\" stroke-width=\"0.8\"";
  switch (((marker % 4) + 4) % 4) {
    case 0: doc.circle(cx, cy, r, fill, tooltip); break;
    case 1: doc.rect(cx - r, cy - r, 2 * r, 2 * r, fill, tooltip); break;
    case 2:
      doc.raw("<path d=\"M" + coord(cx) + " " + coord(cy - r - 1) + " l" + coord(r + 1) + " " + coord(2 * r + 1) + " h" + coord(-2 * r - 2) +
                  " z\" " + fill + ">" + (tooltip.empty() ? "" : "<title>" + xml_escape(tooltip) + "</title>") + "</path>",
              {cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2});
      break;
    default:
      doc.raw("<path d=\"M" + coord(cx) + " " + coord(cy - r - 1) + " l" + coord(r + 1) + " " + coord(r + 1) + " l" + coord(-r - 1) + " " +
                  coord(r + 1) + " l" + coord(-r - 1) + " " + coord(-r - 1) + " z\" " + fill + ">" +
                  (tooltip.empty() ? "" : "<title>" + xml_escape(tooltip) + "</title>") + "</path>",
              {cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2});
  }
}

Box draw_legend(SvgDocument& doc, double x, double y, double max_width, const std::vector<LegendEntry>& entries, const std::string& heading) {
  const double size = 14, row_h = 22, gap = 18, font = 11;
  double cx = x, cy = y;
  double right = x;
  if (!heading.empty()) {
    doc.text(cx, cy + size - 3, heading, {.size = font, .bold = true});
    cx += text_width(heading, font) + 10;
  }
  for (const auto& e : entries) {
    double w = size + 6 + text_width(e.label, font);
    if (cx > x && cx + w > x + max_width) {
      cx = x;
      cy += row_h;
    }
    if (e.swatch) e.swatch(doc, cx, cy, size);
    doc.text(cx + size + 6, cy + size - 3, e.label, {.size = font});
    cx += w + gap;
    right = std::max(right, cx - gap);
  }
  return {x, y, right, cy + size + 4};
}

}  // namespace moeforge
