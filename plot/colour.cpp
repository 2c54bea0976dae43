#include "plot/colour.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moeforge {
namespace {

// Nine evenly spaced samples of the viridis ramp (public domain, from matplotlib).
constexpr Rgb kViridis[9] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},   {44, 113, 142}, {33, 144, 141},
                             {39, 173, 129}, {92, 200, 99},  {170, 220, 50},  {253, 231, 37}};

// Okabe & Ito's colour-blind safe palette, darkest first; yellow last (weak on white).
constexpr const char* kPalette[kCategories] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                               "#56b4e9", "#d55e00", "#000000", "#f0e442"};

double linear(double c) {  // sRGB component → linear light
  c /= 255.0;
  return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

}  // namespace

Rgb sequential_rgb(double t) {
  if (!(t > 0)) t = 0;
  t = std::min(t, 1.0) * 8;
  int i = std::min(7, static_cast<int>(t));
  return mix(kViridis[i], kViridis[i + 1], t - i);
}

std::string sequential_colour(double t) { return hex(sequential_rgb(t)); }

std::string grey_colour(double t) {
  // A light grey whose shade follows the colour's lightness: marked-down cells recede behind the
  // coloured ones yet keep their order (darker = lower, as in the colour ramp).
  double y = luminance(sequential_rgb(t));
  double srgb = y <= 0.0031308 ? 12.92 * y : 1.055 * std::pow(y, 1 / 2.4) - 0.055;
  double v = 150 + srgb * 95;
  return hex({v, v, v});
}

std::string category_colour(int i) { return kPalette[((i % kCategories) + kCategories) % kCategories]; }

std::string hex(const Rgb& c) {
  auto byte = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 255.0))); };
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

Rgb parse_hex(const std::string& h) {
  unsigned r = 0, g = 0, b = 0;
  if (h.size() == 7 && h[0] == '#') std::sscanf(h.c_str() + 1, "%2x%2x%2x", &r, &g, &b);
  return {static_cast<double>(r), static_cast<double>(g), static_cast<double>(b)};
}

Rgb mix(const Rgb& a, const Rgb& b, double t) { return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t}; }

double luminance(const Rgb& c) { return 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b); }

std::string text_colour_on(const std::string& fill) { return luminance(parse_hex(fill)) > 0.2 ? "#000000" : "#ffffff"; }

}  // namespace moeforge
