#include "compress/expert_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace moeforge {
namespace {

std::string colour_of(double t) {  // t in [0, 1]: pale yellow → dark blue
  const double a[3] = {255, 247, 188}, b[3] = {8, 48, 107};
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(a[0] + (b[0] - a[0]) * t),
                static_cast<int>(a[1] + (b[1] - a[1]) * t), static_cast<int>(a[2] + (b[2] - a[2]) * t));
  return buf;
}

std::string group_colour(int g) {
  static const char* kPalette[] = {"#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999"};
  return kPalette[g % 8];
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

}  // namespace

nlohmann::ordered_json expert_report_json(const std::string& verb, const std::string& method, const std::vector<LayerCells>& layers) {
  nlohmann::ordered_json out = {{"verb", verb}, {"method", method}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& l : layers) {
    nlohmann::ordered_json experts = nlohmann::ordered_json::array();
    int kept = 0;
    for (size_t e = 0; e < l.experts.size(); ++e) {
      const auto& c = l.experts[e];
      nlohmann::ordered_json j = {{"expert", e}};
      j["score"] = c.has_score ? nlohmann::ordered_json(c.score) : nlohmann::ordered_json(nullptr);
      j["kept"] = c.kept;
      j["protected"] = c.protected_;
      j["new_index"] = c.kept ? nlohmann::ordered_json(c.new_index) : nlohmann::ordered_json(nullptr);
      kept += c.kept;
      experts.push_back(std::move(j));
    }
    rows.push_back({{"layer", l.layer}, {"kept", kept}, {"experts", experts}});
  }
  out["layers"] = rows;
  return out;
}

std::string expert_heat_map_svg(const std::string& title, const std::vector<LayerCells>& layers, bool merging) {
  size_t n = 0;
  for (const auto& l : layers) n = std::max(n, l.experts.size());
  const int cell = n > 64 ? 10 : 24, left = 70, top = 50;
  const int width = left + static_cast<int>(n) * cell + 20, height = top + static_cast<int>(layers.size()) * cell + 60;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(height) +
                  "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + std::to_string(left) + "\" y=\"20\" font-size=\"14\">" + escape(title) + "</text>\n";
  s += "<text x=\"" + std::to_string(left) + "\" y=\"38\">experts →</text>\n";
  for (size_t r = 0; r < layers.size(); ++r) {
    const auto& l = layers[r];
    int y = top + static_cast<int>(r) * cell;
    s += "<text x=\"4\" y=\"" + std::to_string(y + cell * 2 / 3) + "\">layer " + std::to_string(l.layer) + "</text>\n";
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& c : l.experts)
      if (c.has_score && std::isfinite(c.score)) {
        lo = std::min(lo, c.score);
        hi = std::max(hi, c.score);
      }
    for (size_t e = 0; e < l.experts.size(); ++e) {
      const auto& c = l.experts[e];
      int x = left + static_cast<int>(e) * cell;
      double t = c.has_score && hi > lo && std::isfinite(c.score) ? (c.score - lo) / (hi - lo) : 0.5;
      std::string tip = "layer " + std::to_string(l.layer) + " expert " + std::to_string(e) +
                        (c.has_score ? ", score " + std::to_string(c.score) : std::string()) +
                        (merging ? ", merged into " + std::to_string(c.new_index) : c.kept ? ", kept as " + std::to_string(c.new_index) : ", dropped") +
                        (c.protected_ ? ", protected" : "");
      std::string stroke = merging ? group_colour(c.new_index) : (c.protected_ ? "#000000" : "#ffffff");
      s += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y) + "\" width=\"" + std::to_string(cell - 1) + "\" height=\"" +
           std::to_string(cell - 1) + "\" fill=\"" + (c.kept || merging ? colour_of(t) : "#dddddd") + "\" stroke=\"" + stroke +
           "\" stroke-width=\"" + (merging || c.protected_ ? "2" : "1") + "\"><title>" + escape(tip) + "</title></rect>\n";
      if (!c.kept && !merging)
        s += "<path d=\"M" + std::to_string(x + 3) + " " + std::to_string(y + 3) + " L" + std::to_string(x + cell - 4) + " " +
             std::to_string(y + cell - 4) + " M" + std::to_string(x + cell - 4) + " " + std::to_string(y + 3) + " L" + std::to_string(x + 3) +
             " " + std::to_string(y + cell - 4) + "\" stroke=\"#c00000\" stroke-width=\"1.5\"/>\n";
      if (merging && cell >= 20)
        s += "<text x=\"" + std::to_string(x + cell / 2) + "\" y=\"" + std::to_string(y + cell * 2 / 3) + "\" text-anchor=\"middle\" fill=\"" +
             (t > 0.5 ? "white" : "black") + "\">" + std::to_string(c.new_index) + "</text>\n";
    }
  }
  int ly = top + static_cast<int>(layers.size()) * cell + 20;
  s += "<text x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(ly) + "\">colour: score within the layer (light = low, dark = high)" +
       (merging ? std::string("; number and outline: the merged expert it joined") : std::string("; crossed out: dropped; black outline: protected")) +
       "</text>\n</svg>\n";
  return s;
}


}  // namespace moeforge
