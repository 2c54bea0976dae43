// Checks on the SVG plots moeforge writes, shared by the unit and end-to-end tests: every text
// (measured with plot/'s conservative character widths) and every rectangle lies inside the
// canvas, no two texts overlap, the tooltips (which state each plotted value), and rendering
// with librsvg's rsvg-convert (Debian librsvg2-bin, installed by scripts/setup.sh).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "plot/svg_document.hpp"

namespace moeforge::test {

struct SvgText {
  Box box;
  std::string content;
};

struct ParsedSvg {
  Box canvas;                        // the viewBox
  double width = 0, height = 0;      // width and height attributes
  std::vector<SvgText> texts;
  std::vector<Box> rects;            // without the background
  std::vector<std::string> tooltips; // <title> children of elements, in document order
  std::vector<std::string> fills;    // fill of each element that has a tooltip, same order
  std::string title, metadata;
};

ParsedSvg parse_svg(const std::string& svg);
// Descriptions of every text or rectangle that is not inside the canvas, and of overlapping texts.
std::vector<std::string> layout_problems(const ParsedSvg& svg);
// Renders with rsvg-convert to `png`; returns "" on success, else the command's error output.
std::string render_svg(const std::filesystem::path& svg, const std::filesystem::path& png);
bool have_rsvg_convert();

}  // namespace moeforge::test
