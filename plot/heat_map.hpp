// Heat maps: rows (layers) × columns (experts), one cell per pair, coloured on a colour scale and
// optionally marked (greyed, crossed out, outlined, a category band along the bottom, a label).
// Several panels (e.g. one per data file) share columns, cell size and colour scale. Sized for
// real models: at 61 × 256 cells are 4 × 12 px, column indices are shown every n-th, every row is
// labelled, and each cell carries its tooltip.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plot/colour_scale.hpp"
#include "plot/legend.hpp"

namespace moeforge {

inline constexpr const char* kNoValueFill = "#c6dbef";  // cells without a value (e.g. manual lists)

struct HeatCell {
  std::optional<double> value;  // position on the colour scale
  std::string fill;             // a fixed fill instead (e.g. categorical); overrides value
  bool greyed = false;          // the scale colour in grey of equal lightness (e.g. dropped)
  bool crossed = false;         // an × (drawn when the cell is at least 9 px wide)
  bool outlined = false;        // a black frame (e.g. protected)
  std::string band;             // colour of a band along the bottom (e.g. merged group); empty: none
  std::string label;            // printed inside when it fits
  std::string tooltip;
};

struct HeatPanel {
  std::string heading;                     // above the panel; empty for a single panel
  std::vector<std::string> row_labels;     // one per row
  std::vector<std::vector<HeatCell>> rows;
  std::vector<std::string> row_notes;      // right of each row (optional)
  std::vector<LegendEntry> legend;         // drawn right below this panel (optional)
  std::string note;                        // a line below the panel (optional)
};

struct HeatMap {
  std::string title, subtitle;
  std::string row_axis = "layer", column_axis = "expert", notes_header;
  std::vector<HeatPanel> panels;
  std::optional<ColourScale> scale;
  std::vector<LegendEntry> legend;
  std::vector<std::string> footnotes;
};

// Cell geometry for `columns` columns (shared by the plot and the legend's samples).
struct CellSize {
  int width = 0, height = 0, gap = 0;
};
CellSize heat_cell_size(size_t columns);
// Whether a label fits inside a cell of that size (with a band along the bottom or not).
bool heat_label_fits(const CellSize& size, const std::string& label, bool band);

// The bands of many cells, one path per colour (a rectangle each would double a large plot).
class BandPaths {
 public:
  void add(const std::string& colour, double x, double y, double w, double h);
  void draw(SvgDocument& doc);

 private:
  std::map<std::string, std::pair<std::string, Box>> paths_;  // colour → path data, extent
};

// Draws one cell (and its marks) in the box [x, x + w] × [y, y + h]; bands go into `bands` when
// given (drawn later by its draw()), else straight into the document.
void draw_heat_cell(SvgDocument& doc, double x, double y, double w, double h, const HeatCell& cell, const ColourScale* scale,
                    BandPaths* bands);
// A legend entry whose swatch is `sample` drawn as a cell.
LegendEntry cell_entry(const std::string& label, const HeatCell& sample, const std::optional<ColourScale>& scale);

// Draws the heat map with its top-left corner near (0, 0) into `doc`.
void draw_heat_map(SvgDocument& doc, const HeatMap& map);
// The whole SVG document; `metadata` goes into its <metadata> (e.g. the command that made it).
std::string render_heat_map(const HeatMap& map, const std::string& metadata);

}  // namespace moeforge
