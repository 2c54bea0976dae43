#include "plot/svg_document.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moeforge {
namespace {

// Advance widths for ' ' .. '~' in font sizes: the larger of DejaVu Sans and DejaVu Sans Bold, rounded up to 0.01
// (measured from the font's hmtx table; tests/unit/test_plot_svg.cpp checks them against the
// installed regular and bold fonts when present).
constexpr double kAsciiWidths[95] = {
    0.35, 0.46, 0.53, 0.84, 0.70, 1.01, 0.88, 0.31, 0.46, 0.46, 0.53, 0.84, 0.38, 0.42, 0.38, 0.37,  //  !"#$%&'()*+,-./
    0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70, 0.40, 0.40, 0.84, 0.84, 0.84, 0.59,  // 0-9 :;<=>?
    1.00, 0.78, 0.77, 0.74, 0.84, 0.69, 0.69, 0.83, 0.84, 0.38, 0.38, 0.78, 0.64, 1.00, 0.84, 0.86,  // @A-O
    0.74, 0.86, 0.78, 0.73, 0.69, 0.82, 0.78, 1.11, 0.78, 0.73, 0.73, 0.46, 0.37, 0.46, 0.84, 0.50,  // P-Z [\]^_
    0.50, 0.68, 0.72, 0.60, 0.72, 0.68, 0.44, 0.72, 0.72, 0.35, 0.35, 0.67, 0.35, 1.05, 0.72, 0.69,  // `a-o
    0.72, 0.72, 0.50, 0.60, 0.48, 0.72, 0.66, 0.93, 0.65, 0.66, 0.59, 0.72, 0.37, 0.72, 0.84,        // p-z {|}~
};

// Decodes one code point at s[i], advancing i; returns U+FFFD for an invalid sequence (one byte).
char32_t next_code_point(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int n = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
  if (n < 0 || i + static_cast<size_t>(n) >= s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((d & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  const char32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += static_cast<size_t>(n) + 1;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const char* anchor_name(Anchor a) { return a == Anchor::kStart ? "start" : a == Anchor::kMiddle ? "middle" : "end"; }

std::string tooltip_element(const std::string& tooltip) {
  return tooltip.empty() ? std::string() : "<title>" + xml_escape(tooltip) + "</title>";
}

}  // namespace

double char_width(char32_t c) { return c >= 0x20 && c < 0x7F ? kAsciiWidths[c - 0x20] : 1.0; }

double text_width(std::string_view utf8, double font_size) {
  double w = 0;
  for (size_t i = 0; i < utf8.size();) w += char_width(next_code_point(utf8, i));
  return w * font_size;
}

Box text_box(double x, double y, std::string_view text, const TextStyle& style) {
  double w = text_width(text, style.size);
  double x0 = style.anchor == Anchor::kStart ? x : style.anchor == Anchor::kMiddle ? x - w / 2 : x - w;
  return {x0, y - kAscent * style.size, x0 + w, y + kDescent * style.size};
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t c = next_code_point(text, i);
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else if (c < 0x20 && c != '\n' && c != '\t') continue;  // not allowed in XML 1.0
    else if (c == 0xFFFE || c == 0xFFFF) append_utf8(out, 0xFFFD);
    else append_utf8(out, c);
  }
  return out;
}

std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", std::round(v * 10) / 10);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s == "-0" ? "0" : s;
}

std::string format_value(double v, int digits) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf";
  char buf[48];
  double a = std::fabs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-3)) std::snprintf(buf, sizeof buf, "%.*e", std::max(0, digits - 1), v);
  else std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  std::string s = buf;
  // "1.20e-05" → "1.2e-5": shorter and still exact to `digits`.
  size_t e = s.find('e');
  if (e != std::string::npos) {
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    if (mant.find('.') != std::string::npos) {
      while (mant.back() == '0') mant.pop_back();
      if (mant.back() == '.') mant.pop_back();
    }
    int n = std::stoi(ex);
    s = mant + "e" + std::to_string(n);
  }
  return s;
}

std::string format_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return format_value(v);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", std::clamp(decimals, 0, 9), v);
  return buf;
}

void SvgDocument::include(const Box& b) {
  if (empty_) {
    bounds_ = b;
    empty_ = false;
    return;
  }
  bounds_.x0 = std::min(bounds_.x0, b.x0);
  bounds_.y0 = std::min(bounds_.y0, b.y0);
  bounds_.x1 = std::max(bounds_.x1, b.x1);
  bounds_.y1 = std::max(bounds_.y1, b.y1);
}

void SvgDocument::rect(double x, double y, double w, double h, const std::string& attrs, const std::string& tooltip) {
  body_ += "<rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) + "\" height=\"" + coord(h) + "\"";
  if (!attrs.empty()) body_ += " " + attrs;
  body_ += tooltip.empty() ? "/>\n" : ">" + tooltip_element(tooltip) + "</rect>\n";
  include({x - 1, y - 1, x + w + 1, y + h + 1});  // room for a stroke
}

void SvgDocument::line(double x0, double y0, double x1, double y1, const std::string& attrs) {
  body_ += "<line x1=\"" + coord(x0) + "\" y1=\"" + coord(y0) + "\" x2=\"" + coord(x1) + "\" y2=\"" + coord(y1) + "\" " + attrs + "/>\n";
  include({std::min(x0, x1) - 1, std::min(y0, y1) - 1, std::max(x0, x1) + 1, std::max(y0, y1) + 1});
}

void SvgDocument::polyline(const std::vector<std::pair<double, double>>& points, const std::string& attrs) {
  if (points.empty()) return;
  std::string pts;
  for (const auto& [x, y] : points) {
    if (!pts.empty()) pts += ' ';
    pts += coord(x) + "," + coord(y);
    include({x - 2, y - 2, x + 2, y + 2});
  }
  body_ += "<polyline points=\"" + pts + "\" fill=\"none\" " + attrs + "/>\n";
}

void SvgDocument::circle(double cx, double cy, double r, const std::string& attrs, const std::string& tooltip) {
  body_ += "<circle cx=\"" + coord(cx) + "\" cy=\"" + coord(cy) + "\" r=\"" + coord(r) + "\" " + attrs;
  body_ += tooltip.empty() ? "/>\n" : ">" + tooltip_element(tooltip) + "</circle>\n";
  include({cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1});
}

void SvgDocument::text(double x, double y, std::string_view s, const TextStyle& style) {
  body_ += "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" font-size=\"" + coord(style.size) + "\"";
  if (style.anchor != Anchor::kStart) body_ += std::string(" text-anchor=\"") + anchor_name(style.anchor) + "\"";
  if (style.bold) body_ += " font-weight=\"bold\"";
  if (!style.fill.empty()) body_ += " fill=\"" + style.fill + "\"";
  if (!style.extra.empty()) body_ += " " + style.extra;
  body_ += ">" + xml_escape(s) + "</text>\n";
  include(text_box(x, y, s, style));
}

void SvgDocument::raw(const std::string& element, const Box& extent) {
  body_ += element;
  if (!element.empty() && element.back() != '\n') body_ += '\n';
  include(extent);
}

std::string SvgDocument::finish(const std::string& title, const std::string& metadata, double margin) const {
  Box b = empty_ ? Box{0, 0, 1, 1} : bounds_;
  double x0 = std::floor(b.x0 - margin), y0 = std::floor(b.y0 - margin);
  double w = std::ceil(b.x1 + margin) - x0, h = std::ceil(b.y1 + margin) - y0;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + coord(w) + "\" height=\"" + coord(h) + "\" viewBox=\"" + coord(x0) + " " +
       coord(y0) + " " + coord(w) + " " + coord(h) + "\" font-family=\"" + kPlotFonts + "\" font-size=\"11\">\n";
  s += "<title>" + xml_escape(title) + "</title>\n";
  if (!metadata.empty()) s += "<metadata>" + xml_escape(metadata) + "</metadata>\n";
  s += "<rect x=\"" + coord(x0) + "\" y=\"" + coord(y0) + "\" width=\"" + coord(w) + "\" height=\"" + coord(h) + "\" fill=\"white\"/>\n";
  s += body_;
  s += "</svg>\n";
  return s;
}

}  // namespace moeforge
