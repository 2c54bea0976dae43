// Colours of the plots: a perceptually ordered sequential map (dark violet → yellow, the viridis
// ramp) for values, its grey twin of equal lightness for marked-down cells, and a categorical
// palette that colour-blind readers can tell apart (Okabe and Ito) for series and groups.
#pragma once
#include <string>

namespace moeforge {

struct Rgb {
  double r = 0, g = 0, b = 0;  // 0 … 255
};

Rgb sequential_rgb(double t);          // t in [0, 1] (clamped; NaN → 0)
std::string sequential_colour(double t);
std::string grey_colour(double t);     // the sequential colour's lightness, as a light grey (150 … 245)
std::string category_colour(int i);    // cycles through kCategories colours
inline constexpr int kCategories = 8;
std::string hex(const Rgb& c);
Rgb parse_hex(const std::string& hex);  // "#rrggbb"
Rgb mix(const Rgb& a, const Rgb& b, double t);  // a + (b − a) t
double luminance(const Rgb& c);               // relative, 0 … 1
// Black or white, whichever reads better on `fill`.
std::string text_colour_on(const std::string& fill);

}  // namespace moeforge
