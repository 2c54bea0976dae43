// The SVG plots (plot/ and the builders of compress/): text measured conservatively, nothing
// outside the canvas, no overlapping texts, every kind renders with rsvg-convert, the plotted
// values are the given ones, and a 61-layer × 256-expert model stays legible and small.
// MOEFORGE_PLOT_OUT=DIR keeps a copy of every plot for looking at.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "compress/expert_report.hpp"
#include "compress/usage_plot.hpp"
#include "core/file_io.hpp"
#include "plot/axis.hpp"
#include "plot/bar_chart.hpp"
#include "plot/colour.hpp"
#include "plot/heat_map.hpp"
#include "plot/labels.hpp"
#include "plot/line_chart.hpp"
#include "tests/svg_check.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

// A deterministic stream of numbers in [0, 1).
struct Lcg {
  uint64_t s;
  double next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  }
};

// Layout, rendering and the optional copy; returns the parsed document.
ParsedSvg check_plot(const std::string& svg, const std::string& name) {
  ParsedSvg parsed = parse_svg(svg);
  auto problems = layout_problems(parsed);
  for (size_t i = 0; i < problems.size() && i < 5; ++i) FAIL_CHECK(name << ": " << problems[i]);
  REQUIRE_MESSAGE(have_rsvg_convert(), "rsvg-convert is missing: install librsvg2-bin (scripts/setup.sh)");
  ScratchDir dir("plot-" + name);
  write_bytes(dir / (name + ".svg"), svg);
  CHECK_MESSAGE(render_svg(dir / (name + ".svg"), dir / (name + ".png")) == "", name);
  if (const char* keep = std::getenv("MOEFORGE_PLOT_OUT")) {
    fs::create_directories(keep);
    write_bytes(fs::path(keep) / (name + ".svg"), svg);
  }
  return parsed;
}

std::vector<LayerCells> prune_cells(int layers, int experts, int keep, uint64_t seed) {
  Lcg rng{seed};
  std::vector<LayerCells> out;
  for (int l = 0; l < layers; ++l) {
    LayerCells lc{l, std::vector<ExpertCell>(static_cast<size_t>(experts))};
    std::vector<std::pair<double, int>> order;
    for (int e = 0; e < experts; ++e) {
      auto& c = lc.experts[static_cast<size_t>(e)];
      c.score = std::pow(rng.next(), 3) * (1 + l);  // skewed, growing with depth as REAP does
      c.has_score = true;
      c.protected_ = rng.next() < 0.02;
      order.push_back({c.protected_ ? INFINITY : c.score, e});
    }
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<bool> kept(static_cast<size_t>(experts));
    for (int i = 0; i < keep; ++i) kept[static_cast<size_t>(order[static_cast<size_t>(i)].second)] = true;
    int next = 0;
    for (int e = 0; e < experts; ++e) {
      auto& c = lc.experts[static_cast<size_t>(e)];
      c.kept = kept[static_cast<size_t>(e)];
      c.new_index = c.kept ? next++ : -1;
    }
    out.push_back(std::move(lc));
  }
  return out;
}

std::vector<LayerCells> merge_cells(int layers, int experts, int groups, uint64_t seed) {
  Lcg rng{seed};
  std::vector<LayerCells> out;
  for (int l = 0; l < layers; ++l) {
    LayerCells lc{l, std::vector<ExpertCell>(static_cast<size_t>(experts))};
    for (int e = 0; e < experts; ++e) {
      auto& c = lc.experts[static_cast<size_t>(e)];
      c.new_index = e < groups ? e : static_cast<int>(rng.next() * groups);  // every group non-empty
      c.score = rng.next() * 2.0 / experts;
      c.has_score = true;
    }
    out.push_back(std::move(lc));
  }
  return out;
}

// "layer L · expert E · NAME VALUE · REST" → (L, E, VALUE, REST)
struct CellTip {
  int layer = -1, expert = -1;
  double value = NAN;
  std::string rest;
};
CellTip parse_cell_tip(const std::string& tip) {
  static const std::regex kTip(R"re(^layer (\d+) · expert (\d+)(?: · [^·]*? ([-+0-9.e]+|NaN|inf))? · (.*)$)re");
  std::smatch m;
  CellTip t;
  if (!std::regex_match(tip, m, kTip)) return t;
  t.layer = std::stoi(m[1]), t.expert = std::stoi(m[2]);
  if (m[3].matched) t.value = std::stod(m[3]);
  t.rest = m[4];
  return t;
}

}  // namespace

TEST_CASE("plot: character widths are at least those of the fonts the plots ask for") {
  // DejaVu Sans (regular and bold) is what librsvg uses on Debian; its advance widths, read from
  // the font's hmtx table, must not exceed the table's.
  for (const char* file : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"}) {
    if (!fs::exists(file)) {
      MESSAGE("not installed, not compared: " << file);
      continue;
    }
    std::string font = read_regular_file(file);
    auto u16 = [&](size_t at) { return static_cast<unsigned>(static_cast<unsigned char>(font[at]) << 8 | static_cast<unsigned char>(font[at + 1])); };
    auto u32 = [&](size_t at) { return u16(at) << 16 | u16(at + 2); };
    std::map<std::string, size_t> tables;
    for (unsigned i = 0; i < u16(4); ++i) tables[font.substr(12 + 16 * i, 4)] = u32(12 + 16 * i + 8);
    double units = u16(tables["head"] + 18);
    unsigned metrics = u16(tables["hhea"] + 34);
    // cmap format 4 (Windows Unicode BMP) maps characters to glyphs.
    size_t cmap = tables["cmap"], sub = 0;
    for (unsigned i = 0; i < u16(cmap + 2); ++i)
      if (u16(cmap + 4 + 8 * i) == 3 && u16(cmap + 6 + 8 * i) == 1) sub = cmap + u32(cmap + 8 + 8 * i);
    REQUIRE(sub != 0);
    unsigned segs = u16(sub + 6) / 2;
    auto glyph = [&](unsigned c) -> unsigned {
      for (unsigned k = 0; k < segs; ++k) {
        unsigned end = u16(sub + 14 + 2 * k), start = u16(sub + 16 + 2 * segs + 2 * k);
        if (c < start || c > end) continue;
        unsigned delta = u16(sub + 16 + 4 * segs + 2 * k), range_at = sub + 16 + 6 * segs + 2 * k, range = u16(range_at);
        if (range == 0) return (c + delta) & 0xFFFF;
        unsigned g = u16(range_at + range + 2 * (c - start));
        return g ? (g + delta) & 0xFFFF : 0;
      }
      return 0;
    };
    for (unsigned c = 0x20; c < 0x7F; ++c) {
      unsigned g = std::min(glyph(c), metrics - 1);
      double advance = u16(tables["hmtx"] + 4 * g) / units;
      CAPTURE(file);
      CAPTURE(static_cast<char>(c));
      CHECK(char_width(c) >= advance);
    }
    for (char32_t c : {U'→', U'×', U'÷', U'−', U'…', U'·', U'‖', U'₂', U'“', U'’'}) CHECK(char_width(c) >= u16(tables["hmtx"] + 4 * std::min(glyph(c), metrics - 1)) / units);
  }
}

TEST_CASE("plot: text is escaped into valid XML and measured per code point") {
  CHECK(xml_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
  CHECK(xml_escape(std::string("x\x01y\x1fz")) == "xyz");
  CHECK(xml_escape(std::string("bad \xff\xfe end")) == "bad \xef\xbf\xbd\xef\xbf\xbd end");
  CHECK(xml_escape("é→") == "é→");
  CHECK(text_width("é", 10) == doctest::Approx(10));
  CHECK(text_width("ii", 10) == doctest::Approx(7));
  CHECK(format_value(0.000012345) == "1.23e-5");
  CHECK(format_value(2.5) == "2.5");
  CHECK(format_value(1234567) == "1.23e6");
  CHECK(coord(12.04) == "12");
  CHECK(coord(-0.01) == "0");
  AxisRange r = nice_range(0, 0.72);
  CHECK(r.hi == doctest::Approx(0.8));
  CHECK(r.ticks.size() == 5);
  CHECK(tick_label(0.25, 0.25) == "0.25");
  CHECK(distinct_path_labels({"/a/corpora/en/eval.txt", "/a/corpora/de/eval.txt", "/b/x.txt"}) ==
        std::vector<std::string>{"en/eval.txt", "de/eval.txt", "x.txt"});
  CHECK(short_path_name("/work/models/tiny-mixtral/") == "tiny-mixtral");
  CHECK(short_path_name("model.gguf") == "model.gguf");
  CHECK(ellipsize("abcdef", 6) == "abcdef");
  CHECK(ellipsize("abcdefg", 6) == "abcde…");
  CHECK(ellipsize("ééééééé", 3) == "éé…");
}

TEST_CASE("plot: prune heat maps at 2 × 4, 3 × 8 and 61 × 256: nothing clipped, values as given") {
  struct Case {
    int layers, experts, keep;
    size_t max_bytes;
  };
  for (Case k : {Case{2, 4, 1, 20000}, Case{3, 8, 4, 30000}, Case{61, 256, 128, 2500000}}) {
    CAPTURE(k.layers);
    auto cells = prune_cells(k.layers, k.experts, k.keep, 7);
    ExpertPlotInfo info{.verb = "prune", .model = "synthetic-moe", .method = "reap", .criterion = "reap",
                        .criterion_meaning = "REAP: mean over routed tokens of gate × ‖expert output‖₂", .metadata = "{\"command\": \"moeforge prune …\"}"};
    std::string svg = expert_heat_map_svg(info, cells);
    CHECK(svg.size() < k.max_bytes);
    ParsedSvg p = check_plot(svg, "prune-" + std::to_string(k.layers) + "x" + std::to_string(k.experts));
    CHECK(p.title.find("synthetic-moe") != std::string::npos);
    CHECK(p.metadata.find("moeforge prune") != std::string::npos);
    // One tooltip per cell, in row order, stating the score and the decision; the fill is the
    // scale's colour of score ÷ the layer's highest (grey of it when dropped).
    size_t n = 0;
    for (size_t i = 0; i < p.tooltips.size(); ++i) {
      CellTip t = parse_cell_tip(p.tooltips[i]);
      if (t.layer < 0) continue;
      const auto& layer = cells[static_cast<size_t>(t.layer)];
      const ExpertCell& c = layer.experts[static_cast<size_t>(t.expert)];
      CHECK(t.value == doctest::Approx(c.score).epsilon(1e-5));
      CHECK(t.rest.rfind(c.kept ? "kept as " + std::to_string(c.new_index) : "dropped", 0) == 0);
      CHECK((t.rest.find("protected") != std::string::npos) == c.protected_);
      double hi = 0;
      for (const auto& x : layer.experts) hi = std::max(hi, x.score);
      CHECK(p.fills[i] == (c.kept ? sequential_colour(c.score / hi) : grey_colour(c.score / hi)));
      ++n;
    }
    CHECK(n == static_cast<size_t>(k.layers * k.experts));
    // Every layer is labelled, and expert indices stand along the top.
    for (int l = 0; l < k.layers; ++l)
      CHECK(std::any_of(p.texts.begin(), p.texts.end(), [&](const SvgText& t) { return t.content == std::to_string(l); }));
    CHECK(std::any_of(p.texts.begin(), p.texts.end(), [&](const SvgText& t) { return t.content == std::to_string(k.experts / 2); }));
    CHECK(std::any_of(p.texts.begin(), p.texts.end(), [](const SvgText& t) { return t.content.find("REAP score") != std::string::npos; }));
    CHECK(std::any_of(p.texts.begin(), p.texts.end(), [](const SvgText& t) { return t.content.rfind("dropped", 0) == 0; }));
  }
}

TEST_CASE("plot: merge heat maps show each expert's merged expert; 61 × 256 stays small") {
  for (auto [layers, experts, groups] : {std::tuple{3, 8, 3}, std::tuple{61, 256, 64}}) {
    auto cells = merge_cells(layers, experts, groups, 11);
    std::string svg = expert_heat_map_svg({.verb = "merge-experts", .model = "synthetic-moe", .method = "sub-moe", .merging = true}, cells);
    CHECK(svg.size() < 3200000);  // the tooltips name every other member of the group
    ParsedSvg p = check_plot(svg, "merge-" + std::to_string(layers) + "x" + std::to_string(experts));
    size_t n = 0;
    for (const auto& tip : p.tooltips) {
      CellTip t = parse_cell_tip(tip);
      if (t.layer < 0) continue;
      const ExpertCell& c = cells[static_cast<size_t>(t.layer)].experts[static_cast<size_t>(t.expert)];
      CHECK(t.value == doctest::Approx(c.score).epsilon(1e-5));
      CHECK(t.rest.rfind("merged into " + std::to_string(c.new_index) + " (", 0) == 0);
      ++n;
    }
    CHECK(n == static_cast<size_t>(layers * experts));
  }
}

TEST_CASE("plot: observe's usage map, one panel per file and the file that uses each expert most") {
  for (auto [layers, experts, files] : {std::tuple{3, 8, 1}, std::tuple{4, 8, 3}, std::tuple{61, 256, 2}}) {
    CalibrationStats s;
    s.model = "synthetic", s.n_layers = layers, s.n_experts = experts, s.top_k = experts / 4, s.hidden = 4;
    s.moe_layer.assign(static_cast<size_t>(layers), true);
    s.moe_layer[0] = layers < 2;  // a dense first layer is left out
    Lcg rng{3};
    for (int f = 0; f < files; ++f) {
      FileStats fs;
      fs.file = "/data/" + std::string(1, static_cast<char>('a' + f)) + "/calib.txt";
      fs.tokens = 1000;
      fs.experts.resize(static_cast<size_t>(layers));
      for (int l = 0; l < layers; ++l) {
        if (!s.moe_layer[static_cast<size_t>(l)]) continue;
        auto& e = fs.experts[static_cast<size_t>(l)];
        e.init(experts, 4, false);
        e.tokens = 1000;
        for (int x = 0; x < experts; ++x) e.count[x] = std::floor(rng.next() * 300);
      }
      s.files.push_back(std::move(fs));
    }
    std::string svg = usage_heat_map_svg(s, "synthetic", "");
    int moe = layers - (layers < 2 ? 0 : 1);
    CHECK(svg.size() < static_cast<size_t>(files + (files > 1)) * 2500000);  // per panel, at 61 × 256
    ParsedSvg p = check_plot(svg, "usage-" + std::to_string(files) + "f-" + std::to_string(layers) + "x" + std::to_string(experts));
    size_t n = 0, compared = 0;
    static const std::regex kShare(R"re(· (?:(\w)/)?calib\.txt · share of tokens ([0-9.e+-]+) \(([0-9]+) of)re");
    for (const auto& tip : p.tooltips) {
      CellTip t = parse_cell_tip(tip);
      if (t.layer < 0) continue;
      CHECK(s.moe_layer[static_cast<size_t>(t.layer)]);
      if (t.rest.rfind("most used by", 0) == 0) {
        ++compared;
        continue;
      }
      // "layer L · expert E · FILE · share of tokens S (C of T)": the file by its label (a/calib.txt …,
      // or calib.txt when there is one).
      std::smatch m;
      REQUIRE(std::regex_search(tip, m, kShare));
      size_t f = m[1].matched ? static_cast<size_t>(m[1].str()[0] - 'a') : 0;
      const auto& e = s.files[f].experts[static_cast<size_t>(t.layer)];
      CHECK(std::stod(m[2]) == doctest::Approx(e.count[t.expert] / 1000.0).epsilon(1e-5));
      CHECK(std::stod(m[3]) == e.count[t.expert]);
      ++n;
    }
    CHECK(n == static_cast<size_t>(files * moe * experts));
    CHECK(compared == (files > 1 ? static_cast<size_t>(moe * experts) : 0));
  }
}

TEST_CASE("plot: grouped bar charts (eval per file, per-layer accuracy per router kind)") {
  BarChart eval{.title = "eval synthetic: bits per byte", .subtitle = "4 data files", .value_label = "bits per byte (lower is better)",
                .groups = {"en/eval.txt", "py/eval.txt", "de/eval.txt", "c/eval.txt", "all files"}};
  eval.series.push_back({"model-a", {2.5694, 2.5049, 3.0292, 3.1986, 2.8255}});
  eval.series.push_back({"model-b", {2.1025, 3.4457, 4.5926, 4.6493, 3.6975}});
  ParsedSvg p = check_plot(render_bar_chart(eval, ""), "bars-eval");
  REQUIRE(p.tooltips.size() == 10);
  CHECK(p.tooltips[0] == "en/eval.txt · model-a: 2.5694");
  CHECK(p.tooltips[9] == "all files · model-b: 3.6975");

  BarChart acc{.title = "fit-router synthetic: routing accuracy per layer", .value_label = "top-1 accuracy", .min = 0.0, .max = 1.0};
  Lcg rng{5};
  for (int l = 0; l < 61; ++l) acc.groups.push_back(std::to_string(l));
  for (const char* kind : {"random", "zero", "embed", "hidden", "centroid", "ridge", "logistic"}) {
    BarSeries s{kind, {}};
    for (int l = 0; l < 61; ++l) s.values.push_back(rng.next());
    acc.series.push_back(s);
  }
  acc.reference_lines.push_back({0.25, "chance"});
  std::string svg = render_bar_chart(acc, "");
  CHECK(svg.size() < 200000);
  p = check_plot(svg, "bars-61-layers");
  REQUIRE(p.tooltips.size() == 61 * 7);
  // Bars are drawn group by group: tooltip 7 g + s is layer g, router kind s.
  CHECK(p.tooltips[7 * 8 + 2] == "8 · embed: " + format_value(acc.series[2].values[8], 8));
  CHECK(std::stod(p.tooltips[7 * 8 + 2].substr(p.tooltips[7 * 8 + 2].rfind(' '))) == doctest::Approx(acc.series[2].values[8]).epsilon(1e-7));
}

TEST_CASE("plot: line charts in small multiples with one legend") {
  LineChart c{.title = "pruning quality", .x_label = "experts kept", .y_label = "bits per byte", .x_ticks = {4, 3, 2}, .x_descending = true};
  Lcg rng{9};
  for (const char* panel : {"calibrated on en", "on py", "on de", "on c", "on the mix"}) {
    LinePanel pn{panel, {}};
    for (const char* crit : {"reap", "frequency", "weighted-frequency", "ean", "ean-mean", "easy-ep", "random"})
      pn.series.push_back({crit, {4, 3, 2}, {2.5, 2.5 + rng.next(), 2.5 + 2 * rng.next()}});
    c.panels.push_back(pn);
  }
  ParsedSvg p = check_plot(render_line_chart(c, ""), "lines");
  CHECK(p.tooltips.size() == 5 * 7 * 3);
  CHECK(p.tooltips[0].rfind("calibrated on en · reap · x 4: 2.5", 0) == 0);
}

TEST_CASE("plot: hostile names stay valid XML and inside the canvas") {
  auto cells = prune_cells(2, 4, 2, 1);
  std::string name = std::string("a<b>&\"c\" \x01\xff") + std::string(120, 'W');
  ParsedSvg p = check_plot(expert_heat_map_svg({.verb = "prune", .model = name, .method = "manual list"}, cells), "hostile");
  CHECK(p.title.find("a<b>&\"c\"") != std::string::npos);
}
