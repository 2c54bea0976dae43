// End to end: the --plot files of prune, merge-experts, observe and eval. Each renders with
// rsvg-convert, keeps every text inside its canvas, states the values of the report or the
// statistics it draws, carries the command in its metadata, and obeys the output rules
// (nothing written by --dry-run, no overwrite without --force, never onto an input).
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/stats_file.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/svg_check.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

const std::string kMoe = fixture("models/btx-bytes/merged-mixtral-top2").string();
std::string corpus(const std::string& d, const std::string& part) { return fixture("corpora/" + d + "/" + part + ".txt").string(); }

ParsedSvg checked_plot(const fs::path& svg) {
  REQUIRE(fs::exists(svg));
  ParsedSvg p = parse_svg(read_text(svg));
  auto problems = layout_problems(p);
  for (size_t i = 0; i < problems.size() && i < 5; ++i) FAIL_CHECK(svg.string() << ": " << problems[i]);
  REQUIRE_MESSAGE(have_rsvg_convert(), "rsvg-convert is missing: install librsvg2-bin (scripts/setup.sh)");
  CHECK(render_svg(svg, svg.string() + ".png") == "");
  return p;
}

// "layer L · expert E · … VALUE · REST" → L, E, VALUE, REST.
bool cell_tip(const std::string& tip, int& layer, int& expert, double& value, std::string& rest) {
  static const std::regex kTip(R"re(^layer (\d+) · expert (\d+) · [^·]*? ([-+0-9.e]+) · (.*)$)re");
  std::smatch m;
  if (!std::regex_match(tip, m, kTip)) return false;
  layer = std::stoi(m[1]), expert = std::stoi(m[2]), value = std::stod(m[3]), rest = m[4];
  return true;
}

}  // namespace

TEST_CASE("prune --plot: the heat map states the report's scores and decisions") {
  ScratchDir dir("plot-prune");
  std::string stats = (dir / "de.safetensors").string();
  REQUIRE(run_moeforge({"observe", kMoe, "--bytes", corpus("de", "calib"), "--seq-len", "128", "--max-tokens", "8192", "--out", stats, "--quiet"}).status == 0);
  auto r = run_moeforge({"prune", kMoe, (dir / "out").string(), "--stats", stats, "--keep", "1", "--report", (dir / "r.json").string(),
                         "--plot", (dir / "p.svg").string(), "--quiet"});
  REQUIRE(r.status == 0);
  ParsedSvg p = checked_plot(dir / "p.svg");
  CHECK(p.title.rfind("prune merged-mixtral-top2: REAP score, 1 of 4 experts kept per layer", 0) == 0);
  CHECK(p.title.find(fixtures().string()) == std::string::npos);  // the model's name, not its path
  auto meta = nlohmann::json::parse(p.metadata);
  CHECK(meta["command"].get<std::string>().rfind("moeforge prune " + kMoe + " " + (dir / "out").string(), 0) == 0);
  CHECK(meta["command"].get<std::string>().find("--keep 1") != std::string::npos);
  CHECK(meta["provenance"]["verb"] == "prune");
  auto report = nlohmann::json::parse(read_text(dir / "r.json"));
  int cells = 0;
  for (const auto& tip : p.tooltips) {
    int l, e;
    double v;
    std::string rest;
    if (!cell_tip(tip, l, e, v, rest)) continue;
    const auto& want = report["layers"][l]["experts"][e];
    CHECK(v == doctest::Approx(want["score"].get<double>()).epsilon(1e-5));
    CHECK(rest == (want["kept"].get<bool>() ? "kept as " + std::to_string(want["new_index"].get<int>()) : std::string("dropped")));
    ++cells;
  }
  CHECK(cells == 8);
  // A dry run writes neither the checkpoint nor the plot.
  r = run_moeforge({"prune", kMoe, (dir / "dry").string(), "--stats", stats, "--keep", "2", "--plot", (dir / "dry.svg").string(), "--dry-run", "--quiet"});
  CHECK(r.status == 0);
  CHECK_FALSE(fs::exists(dir / "dry.svg"));
  CHECK_FALSE(fs::exists(dir / "dry"));
}

TEST_CASE("merge-experts --plot: each cell names the merged expert the report puts it in") {
  ScratchDir dir("plot-merge");
  auto r = run_moeforge({"merge-experts", kMoe, (dir / "out").string(), "--method", "msmoe", "--bytes", corpus("en", "calib"), corpus("de", "calib"),
                         "--seq-len", "128", "--max-tokens", "4096", "--groups", "2", "--report", (dir / "r.json").string(), "--plot",
                         (dir / "p.svg").string(), "--quiet"});
  REQUIRE(r.status == 0);
  ParsedSvg p = checked_plot(dir / "p.svg");
  CHECK(p.title.rfind("merge-experts merged-mixtral-top2: msmoe, 4 experts merged into 2 per layer", 0) == 0);
  auto report = nlohmann::json::parse(read_text(dir / "r.json"));
  int cells = 0;
  for (const auto& tip : p.tooltips) {
    int l, e;
    double v;
    std::string rest;
    if (!cell_tip(tip, l, e, v, rest)) continue;
    const auto& want = report["layers"][l]["experts"][e];
    CHECK(v == doctest::Approx(want["score"].get<double>()).epsilon(1e-5));
    CHECK(rest.rfind("merged into " + std::to_string(want["new_index"].get<int>()) + " (", 0) == 0);
    ++cells;
  }
  CHECK(cells == 8);
  // The group numbers are printed in the cells (4 experts: room enough).
  CHECK(std::count_if(p.texts.begin(), p.texts.end(), [](const SvgText& t) { return t.content == "0" || t.content == "1"; }) >= 8);
}

TEST_CASE("observe --plot: usage per file equals the statistics; the output rules hold") {
  ScratchDir dir("plot-observe");
  std::string stats = (dir / "s.safetensors").string(), plot = (dir / "u.svg").string();
  std::vector<std::string> args = {"observe", kMoe, "--bytes", corpus("en", "calib"), corpus("py", "calib"), "--seq-len", "128",
                                   "--max-tokens", "4096", "--out", stats, "--plot", plot, "--quiet"};
  REQUIRE(run_moeforge(args).status == 0);
  ParsedSvg p = checked_plot(plot);
  CalibrationStats s = read_stats(stats);
  static const std::regex kShare(R"re(^layer (\d+) · expert (\d+) · (en|py)/calib\.txt · share of tokens ([0-9.e+-]+) \(([0-9]+) of ([0-9]+)\)$)re");
  int cells = 0, compared = 0;
  for (const auto& tip : p.tooltips) {
    std::smatch m;
    if (tip.find("most used by") != std::string::npos) ++compared;
    if (!std::regex_match(tip, m, kShare)) continue;
    const auto& e = s.files[m[3] == "en" ? 0 : 1].experts[static_cast<size_t>(std::stoi(m[1]))];
    int x = std::stoi(m[2]);
    CHECK(std::stod(m[4]) == doctest::Approx(e.count[x] / e.tokens).epsilon(1e-5));
    CHECK(std::stod(m[5]) == e.count[x]);
    CHECK(std::stod(m[6]) == e.tokens);
    ++cells;
  }
  CHECK(cells == 2 * 2 * 4);
  CHECK(compared == 2 * 4);
  // Existing outputs are refused without --force (nothing rewritten), replaced with it.
  auto before = read_text(plot);
  auto r = run_moeforge(args);
  CHECK(r.status == 2);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(read_text(plot) == before);
  fs::remove(stats);  // only the plot exists now: still refused, and no statistics written
  r = run_moeforge(args);
  CHECK(r.status == 2);
  CHECK(r.err.find("u.svg") != std::string::npos);
  CHECK_FALSE(fs::exists(stats));
  args.push_back("--force");
  CHECK(run_moeforge(args).status == 0);
  // A plot may not overwrite an input.
  r = run_moeforge({"observe", kMoe, "--bytes", corpus("en", "calib"), "--seq-len", "128", "--max-tokens", "512", "--out",
                    (dir / "t.safetensors").string(), "--plot", corpus("en", "calib"), "--force", "--quiet"});
  CHECK(r.status == 2);
  CHECK(r.err_lines() == 1);
}

TEST_CASE("eval --plot: bits per byte per file as bars, equal to eval's report") {
  ScratchDir dir("plot-eval");
  std::string plot = (dir / "e.svg").string();
  std::vector<std::string> args = {"eval", kMoe, "--bytes", corpus("en", "eval"), corpus("py", "eval"), corpus("de", "eval"), corpus("c", "eval"),
                                   "--seq-len", "128", "--max-tokens", "2048", "--json", "--plot", plot};
  auto r = run_moeforge(args);
  REQUIRE(r.status == 0);
  auto report = nlohmann::json::parse(r.out);
  ParsedSvg p = checked_plot(plot);
  CHECK(p.title == "eval merged-mixtral-top2: bits per byte");
  REQUIRE(p.tooltips.size() == 5);
  const char* names[] = {"en/eval.txt", "py/eval.txt", "de/eval.txt", "c/eval.txt", "all files"};
  for (size_t i = 0; i < 5; ++i) {
    std::string prefix = std::string(names[i]) + " · merged-mixtral-top2: ";
    REQUIRE(p.tooltips[i].rfind(prefix, 0) == 0);
    double want = report["files"][i]["bits_per_byte"].get<double>();  // the last entry is the total
    CHECK(std::stod(p.tooltips[i].substr(prefix.size())) == doctest::Approx(want).epsilon(1e-7));
  }
  r = run_moeforge(args);
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  args.push_back("--force");
  CHECK(run_moeforge(args).status == 0);
}

TEST_CASE("fit-router --plot and compose --plot: routing accuracy per layer equals the --report") {
  ScratchDir dir("plot-router");
  std::vector<std::string> bytes = {"--bytes", corpus("en", "calib"), corpus("py", "calib"), corpus("de", "calib"), corpus("c", "calib")};
  std::vector<std::string> fit = {"fit-router", kMoe, (dir / "refit").string(), "--seq-len", "128", "--max-tokens", "4096",
                                  "--report", (dir / "r.json").string(), "--plot", (dir / "r.svg").string()};
  fit.insert(fit.end(), bytes.begin(), bytes.end());
  REQUIRE(run_moeforge(fit).status == 0);
  auto report = nlohmann::json::parse(read_text(dir / "r.json"));
  ParsedSvg p = checked_plot(dir / "r.svg");
  CHECK(p.title == "fit-router merged-mixtral-top2: routing accuracy per layer");
  REQUIRE(p.tooltips.size() == 4);  // 2 layers × (before, after), group by group
  for (size_t i = 0; i < 4; ++i) {
    const auto& layer = report["layers"][i / 2];
    std::string prefix = "layer " + std::to_string(layer["layer"].get<int>()) + " · " + (i % 2 ? "ridge (fitted)" : "input model’s routers") + ": ";
    REQUIRE(p.tooltips[i].rfind(prefix, 0) == 0);
    double want = layer[i % 2 ? "after" : "before"]["accuracy"].get<double>();
    CHECK(std::stod(p.tooltips[i].substr(prefix.size())) == doctest::Approx(want).epsilon(1e-7));
  }
  std::vector<std::string> compose = {"compose", "--expert", fixture("models/btx-bytes/expert-en").string(), "--expert",
                                      fixture("models/btx-bytes/expert-py").string(), (dir / "moe").string(), "--router", "centroid",
                                      "--router-bytes", corpus("en", "calib"), corpus("py", "calib"), "--seq-len", "128", "--max-tokens", "4096",
                                      "--report", (dir / "c.json").string(), "--plot", (dir / "c.svg").string(), "--quiet"};
  REQUIRE(run_moeforge(compose).status == 0);
  report = nlohmann::json::parse(read_text(dir / "c.json"));
  p = checked_plot(dir / "c.svg");
  REQUIRE(p.tooltips.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    std::string prefix = "layer " + std::to_string(i) + " · centroid: ";
    REQUIRE(p.tooltips[i].rfind(prefix, 0) == 0);
    CHECK(std::stod(p.tooltips[i].substr(prefix.size())) == doctest::Approx(report["layers"][i]["after"]["accuracy"].get<double>()).epsilon(1e-7));
  }
  // The plot is an output like the checkpoint: not onto an input, nothing written by a dry run.
  compose[compose.size() - 2] = corpus("en", "calib");
  auto r = run_moeforge(compose);
  CHECK(r.status == 2);
  compose[compose.size() - 2] = (dir / "dry.svg").string();
  compose[compose.size() - 4] = (dir / "dry.json").string();
  compose[5] = (dir / "moe2").string();
  compose.push_back("--dry-run");
  CHECK(run_moeforge(compose).status == 0);
  CHECK_FALSE(fs::exists(dir / "dry.svg"));
  CHECK_FALSE(fs::exists(dir / "moe2"));
}
