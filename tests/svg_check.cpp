#include "tests/svg_check.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <iterator>
#include <sstream>

namespace moeforge::test {
namespace {

std::string unescape(std::string s) {
  static const std::pair<const char*, const char*> kEntities[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}};
  for (const auto& [from, to] : kEntities)
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1)) s.replace(at, std::string(from).size(), to);
  return s;
}

std::map<std::string, std::string> attributes(const std::string& text) {
  static const std::regex kAttr(R"re(([a-zA-Z_:][-a-zA-Z0-9_:]*)="([^"]*)")re");
  std::map<std::string, std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), kAttr), end; it != end; ++it) out[(*it)[1]] = (*it)[2];
  return out;
}

double number(const std::map<std::string, std::string>& a, const std::string& key, double fallback) {
  auto it = a.find(key);
  return it == a.end() ? fallback : std::stod(it->second);
}

bool overlap(const Box& a, const Box& b) {
  const double eps = 0.5;
  return std::min(a.x1, b.x1) - std::max(a.x0, b.x0) > eps && std::min(a.y1, b.y1) - std::max(a.y0, b.y0) > eps;
}

std::string describe(const Box& b) {
  std::ostringstream s;
  s << "[" << b.x0 << ", " << b.y0 << " – " << b.x1 << ", " << b.y1 << "]";
  return s.str();
}

// Each element `<NAME attrs>` (or `<NAME attrs/>`) in order: its attributes and what follows
// up to the next '<' (a text's content, or nothing). std::regex over megabytes is slow, so the
// elements are found with find() and only their short attribute text goes through a regex.
struct Element {
  std::string name, attrs, content;
  size_t end = 0;  // just after the '>'
};

std::vector<Element> elements(const std::string& svg, const std::string& name) {
  std::vector<Element> out;
  const std::string open = "<" + name + " ";
  for (size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    size_t close = svg.find('>', at);
    if (close == std::string::npos) break;
    Element e{name, svg.substr(at + open.size(), close - at - open.size()), "", close + 1};
    if (!e.attrs.empty() && e.attrs.back() == '/') e.attrs.pop_back();
    size_t next = svg.find('<', close);
    e.content = svg.substr(close + 1, (next == std::string::npos ? svg.size() : next) - close - 1);
    out.push_back(std::move(e));
  }
  return out;
}

std::string between(const std::string& svg, const std::string& open, const std::string& close) {
  size_t a = svg.find(open);
  if (a == std::string::npos) return "";
  size_t b = svg.find(close, a);
  return unescape(svg.substr(a + open.size(), b - a - open.size()));
}

}  // namespace

ParsedSvg parse_svg(const std::string& svg) {
  ParsedSvg out;
  for (const auto& e : elements(svg, "svg")) {
    auto a = attributes(e.attrs);
    std::istringstream vb(a["viewBox"]);
    double x = 0, y = 0, w = 0, h = 0;
    vb >> x >> y >> w >> h;
    out.canvas = {x, y, x + w, y + h};
    out.width = number(a, "width", 0), out.height = number(a, "height", 0);
  }
  out.title = between(svg, "<title>", "</title>");
  out.metadata = between(svg, "<metadata>", "</metadata>");
  for (const auto& e : elements(svg, "text")) {
    auto a = attributes(e.attrs);
    std::string anchor = a.count("text-anchor") ? a["text-anchor"] : "start";
    TextStyle style{.size = number(a, "font-size", 11), .anchor = anchor == "middle" ? Anchor::kMiddle : anchor == "end" ? Anchor::kEnd : Anchor::kStart};
    std::string content = unescape(e.content);
    out.texts.push_back({text_box(number(a, "x", 0), number(a, "y", 0), content, style), content});
  }
  bool first = true;
  for (const auto& e : elements(svg, "rect")) {
    auto a = attributes(e.attrs);
    double x = number(a, "x", 0), y = number(a, "y", 0);
    if (!first) out.rects.push_back({x, y, x + number(a, "width", 0), y + number(a, "height", 0)});
    first = false;
  }
  // Elements with a tooltip, in document order: "<NAME attrs><title>TEXT</title>".
  for (size_t at = svg.find("><title>"); at != std::string::npos; at = svg.find("><title>", at + 1)) {
    size_t start = svg.rfind('<', at), space = svg.find(' ', start);
    if (start == std::string::npos || space == std::string::npos || space > at) continue;
    size_t end = svg.find("</title>", at);
    out.tooltips.push_back(unescape(svg.substr(at + 8, end - at - 8)));
    out.fills.push_back(attributes(svg.substr(space, at - space))["fill"]);
  }
  return out;
}

std::vector<std::string> layout_problems(const ParsedSvg& svg) {
  std::vector<std::string> out;
  auto inside = [&](const Box& b) { return b.x0 >= svg.canvas.x0 && b.y0 >= svg.canvas.y0 && b.x1 <= svg.canvas.x1 && b.y1 <= svg.canvas.y1; };
  if (svg.canvas.width() != svg.width || svg.canvas.height() != svg.height) out.push_back("viewBox and width/height differ");
  for (const auto& t : svg.texts)
    if (!inside(t.box)) out.push_back("text \"" + t.content + "\" " + describe(t.box) + " outside the canvas " + describe(svg.canvas));
  for (const auto& r : svg.rects)
    if (!inside(r)) out.push_back("rect " + describe(r) + " outside the canvas " + describe(svg.canvas));
  for (size_t i = 0; i < svg.texts.size(); ++i)
    for (size_t j = i + 1; j < svg.texts.size(); ++j)
      if (overlap(svg.texts[i].box, svg.texts[j].box))
        out.push_back("texts \"" + svg.texts[i].content + "\" " + describe(svg.texts[i].box) + " and \"" + svg.texts[j].content + "\" " +
                      describe(svg.texts[j].box) + " overlap");
  return out;
}

bool have_rsvg_convert() { return std::system("command -v rsvg-convert >/dev/null 2>&1") == 0; }

std::string render_svg(const std::filesystem::path& svg, const std::filesystem::path& png) {
  std::filesystem::path err = png.string() + ".stderr";
  std::string cmd = "rsvg-convert -o '" + png.string() + "' '" + svg.string() + "' 2>'" + err.string() + "'";
  int status = std::system(cmd.c_str());
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (status != 0 && text.empty()) text = "rsvg-convert exited with status " + std::to_string(status);
  if (status == 0 && !std::filesystem::exists(png)) text = "rsvg-convert wrote no PNG";
  return text;
}

}  // namespace moeforge::test
