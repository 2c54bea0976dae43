// A plain SVG document built element by element, which keeps the bounding box of everything drawn
// (text included, measured with a conservative character width), so the canvas it writes always
// holds every element: nothing can be clipped. The plots of moeforge (heat maps, bar and line
// charts) draw into one of these; no plotting library is involved.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

// The fonts the plots ask for. The character widths below are those of DejaVu Sans Bold (the
// widest of these, and Verdana's metrics), rounded up, so every text is measured at least as wide
// as it renders in regular or bold.
inline constexpr const char* kPlotFonts = "DejaVu Sans, Verdana, Arial, sans-serif";
inline constexpr double kAscent = 0.95;   // above the baseline, in font sizes
inline constexpr double kDescent = 0.25;  // below the baseline

// Width of one character in font sizes (ASCII from the table, every other code point 1.0).
double char_width(char32_t c);
// Width of a UTF-8 string at a font size; invalid bytes count as one wide character each.
double text_width(std::string_view utf8, double font_size);

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
};

enum class Anchor { kStart, kMiddle, kEnd };

struct TextStyle {
  double size = 11;
  Anchor anchor = Anchor::kStart;
  bool bold = false;
  std::string fill;   // empty: black
  std::string extra;  // further attributes, e.g. data-… for tests
};

// The horizontal extent of a text drawn at x with this style, and its vertical one at baseline y.
Box text_box(double x, double y, std::string_view text, const TextStyle& style);

// XML text: &, <, >, " escaped, control characters dropped, invalid UTF-8 replaced by U+FFFD.
std::string xml_escape(std::string_view text);
// A coordinate: at most one decimal, no trailing zeros ("12", "12.5").
std::string coord(double v);
// A value for people: `digits` significant digits, exponent form only for very large or small.
std::string format_value(double v, int digits = 3);
// A value with a fixed number of decimals ("0.50"); non-finite values as format_value.
std::string format_fixed(double v, int decimals);

class SvgDocument {
 public:
  // `attrs` are further attributes (fill, stroke …), written as given.
  void rect(double x, double y, double w, double h, const std::string& attrs, const std::string& tooltip = "");
  void line(double x0, double y0, double x1, double y1, const std::string& attrs);
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& attrs);
  void circle(double cx, double cy, double r, const std::string& attrs, const std::string& tooltip = "");
  void text(double x, double y, std::string_view text, const TextStyle& style = {});
  // Any element whose extent the caller states.
  void raw(const std::string& element, const Box& extent);
  void include(const Box& b);
  // An id unique within this document ("PREFIX3"), for gradients and the like.
  std::string unique_id(const std::string& prefix) { return prefix + std::to_string(++ids_); }

  const Box& bounds() const { return bounds_; }
  bool empty() const { return empty_; }
  // The whole document: canvas = bounds + margin, white background, `title` as the document's
  // title, `metadata` (any text, e.g. the command that made the plot) in <metadata>.
  std::string finish(const std::string& title, const std::string& metadata, double margin = 10) const;

 private:
  std::string body_;
  Box bounds_;
  bool empty_ = true;
  int ids_ = 0;
};

}  // namespace moeforge
