// End to end: prune and merge-experts through the binary — reports that match observe's
// statistics, SVG plots, and bad requests refused before anything is written.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/stats_file.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }
std::string calib(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

}  // namespace

TEST_CASE("prune: the report's scores are observe's statistics; the plot is an SVG") {
  ScratchDir dir("prune-cli");
  std::string moe = models("btx-bytes/merged-mixtral-top2"), stats = (dir / "s.safetensors").string();
  auto r = run_moeforge({"observe", moe, "--bytes", calib("py"), "--seq-len", "128", "--max-tokens", "8192", "--out", stats, "--quiet"});
  REQUIRE(r.status == 0);
  for (const char* criterion : {"reap", "frequency", "ean", "easy-ep"}) {
    CAPTURE(criterion);
    std::string out = (dir / criterion).string(), report = out + ".json", plot = out + ".svg";
    r = run_moeforge({"prune", moe, out, "--stats", stats, "--keep", "2", "--criterion", criterion, "--report", report, "--plot", plot});
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(read_text(report));
    CalibrationStats s = read_stats(stats);
    for (int l = 0; l < 2; ++l) {
      const auto& e = s.files[0].experts[l];
      VecD want = std::string(criterion) == "reap" ? e.reap() : std::string(criterion) == "frequency" ? VecD(e.count)
                  : std::string(criterion) == "ean" ? VecD(e.ean_sum) : VecD(e.easy_ep_sum);
      int kept = 0;
      for (int x = 0; x < 4; ++x) {
        CHECK(j["layers"][l]["experts"][x]["score"].get<double>() == doctest::Approx(want[x]).epsilon(1e-12));
        kept += j["layers"][l]["experts"][x]["kept"].get<bool>();
      }
      CHECK(kept == 2);
    }
    std::string svg = read_text(plot);
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("</svg>") != std::string::npos);
  }
  // REAP with Python data keeps the Python expert among the two in the last layer.
  auto j = nlohmann::json::parse(read_text((dir / "reap").string() + ".json"));
  CHECK(j["layers"][1]["experts"][1]["kept"] == true);
  auto cfg = nlohmann::json::parse(read_text(dir / "reap/config.json"));
  CHECK(cfg["num_local_experts"] == 2);
  CHECK(cfg["num_experts_per_tok"] == 2);
  // --data instead of --stats gives the same decisions.
  r = run_moeforge({"prune", moe, (dir / "direct").string(), "--bytes", calib("py"), "--seq-len", "128", "--max-tokens", "8192",
                    "--keep", "2", "--report", (dir / "direct.json").string(), "--quiet"});
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(read_text(dir / "direct.json"))["layers"] == j["layers"]);
}

TEST_CASE("prune refuses bad requests before writing") {
  ScratchDir dir("prune-bad");
  std::string out = (dir / "o").string(), mixtral = models("tiny-mixtral");
  write_bytes(dir / "list.json", R"({"5": [1]})");
  write_bytes(dir / "keep.json", R"({"0": [1, 2], "1": [1, 2], "2": [3, 4]})");
  std::string other_stats = (dir / "other.safetensors").string();
  REQUIRE(run_moeforge({"observe", models("btx-bytes/merged-mixtral-top2"), "--bytes", calib("en"), "--seq-len", "128",
                        "--max-tokens", "512", "--out", other_stats, "--quiet"}).status == 0);
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"--ratio", "1", "--criterion", "random"}, 2, "--ratio: must be in (0, 1)"},
      {{"--keep", "9", "--criterion", "random"}, 2, "exceeds the 8 experts"},
      {{"--keep", "2", "--stats", other_stats}, 4, "statistics are for a model with layers 2"},
      {{"--drop-list", (dir / "list.json").string()}, 2, "layer \"5\" does not exist"},
      {{"--keep", "2"}, 2, "needs calibration statistics"},
      {{"--keep-list", (dir / "keep.json").string(), "--keep", "2"}, 2, "decide alone"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"prune", mixtral, out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_moeforge(args);
    CAPTURE(r.err);
    CHECK(r.status == c.status);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.err_lines() == 1);
    CHECK_FALSE(fs::exists(out));
  }
  auto r = run_moeforge({"prune", models("tiny-llama"), out, "--keep", "1", "--criterion", "random"});
  CHECK(r.status == 5);
  r = run_moeforge({"prune", mixtral, out, "--keep-list", (dir / "keep.json").string()});
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(read_text(dir / "o/config.json"))["num_local_experts"] == 2);
}

TEST_CASE("merge-experts through the binary: methods, reports, refusals") {
  ScratchDir dir("merge-cli");
  std::string moe = models("btx-bytes/merged-mixtral-top2");
  for (const char* method : {"sub-moe", "msmoe", "hcsmoe"}) {
    CAPTURE(method);
    std::string out = (dir / method).string();
    auto r = run_moeforge({"merge-experts", moe, out, "--method", method, "--bytes", calib("en"), calib("de"), "--seq-len", "128",
                           "--max-tokens", "4096", "--groups", "2", "--report", out + ".json", "--plot", out + ".svg", "--quiet"});
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(read_text(out + ".json"));
    CHECK(j["groups"][0].size() == 2);
    CHECK(nlohmann::json::parse(read_text(dir / method / "config.json"))["num_local_experts"] == 2);
    r = run_moeforge({"eval", out, "--bytes", fixture("corpora/en/eval.txt").string(), "--seq-len", "128", "--max-tokens", "2048", "--json"});
    REQUIRE(r.status == 0);
    CHECK(std::isfinite(nlohmann::json::parse(r.out)["files"][0]["bits_per_byte"].get<double>()));
  }
  write_bytes(dir / "groups.json", R"({"0": [[0, 1], [2, 3]], "1": [[0, 3], [1, 2]]})");
  auto r = run_moeforge({"merge-experts", moe, (dir / "avg").string(), "--method", "average", "--groups-file", (dir / "groups.json").string(),
                         "--uniform-weights"});
  CHECK(r.status == 0);
  r = run_moeforge({"merge-experts", moe, (dir / "x").string(), "--method", "average", "--groups", "2", "--uniform-weights"});
  CHECK(r.status == 2);
  CHECK(r.err.find("pass --groups-file") != std::string::npos);
  r = run_moeforge({"merge-experts", moe, (dir / "x").string(), "--groups", "2"});
  CHECK(r.status == 2);
  CHECK(r.err.find("needs calibration statistics") != std::string::npos);
  r = run_moeforge({"merge-experts", moe, (dir / "x").string(), "--groups", "2", "--method", "hcsmoe", "--rank", "4", "--uniform-weights"});
  CHECK(r.status == 2);
  CHECK_FALSE(fs::exists(dir / "x"));
}
