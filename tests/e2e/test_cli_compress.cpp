// End to end: prune and merge-experts through the binary — reports that match observe's
// statistics, SVG plots, and bad requests refused before anything is written.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/stats_file.hpp"
#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }
std::string calib(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

// Tensor `proj` of merged expert g in layer l, and of source expert e, as float64.
std::vector<double> expert_weights(const Checkpoint& c, int l, int e, const char* proj) {
  return read_f64(c.require_tensor("model.layers." + std::to_string(l) + ".block_sparse_moe.experts." + std::to_string(e) + "." + proj + ".weight"));
}

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


TEST_CASE("pruning DeepSeek-V3 to one expert per group lifts the group limit") {
  ScratchDir dir("prune-deepseek-groups");
  // tiny-deepseek-v3: 8 experts in n_group 4 groups of 2, topk_group 2; layer 0 is dense.
  write_bytes(dir / "one-per-group.json", R"({"1": [0, 2, 4, 6], "2": [1, 3, 5, 7]})");
  std::string out = (dir / "o").string();
  auto r = run_moeforge({"prune", models("tiny-deepseek-v3"), out, "--keep-list", (dir / "one-per-group.json").string()});
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("group-limited routing removed (n_group 4 -> 1, topk_group 2 -> 1)") != std::string::npos);
  auto config = nlohmann::json::parse(read_text(dir / "o/config.json"));
  CHECK(config["n_routed_experts"] == 4);
  CHECK(config["n_group"] == 1);
  CHECK(config["topk_group"] == 1);
  // Keeping whole groups keeps the limit.
  write_bytes(dir / "whole-groups.json", R"({"1": [0, 1, 4, 5], "2": [2, 3, 6, 7]})");
  r = run_moeforge({"prune", models("tiny-deepseek-v3"), (dir / "w").string(), "--keep-list", (dir / "whole-groups.json").string()});
  REQUIRE(r.status == 0);
  config = nlohmann::json::parse(read_text(dir / "w/config.json"));
  CHECK(config["n_group"] == 2);
}


TEST_CASE("merge-experts through the binary: merged experts are the usage-weighted average of their (aligned) members") {
  ScratchDir dir("merge-cli");
  std::string moe = models("btx-bytes/merged-mixtral-top2");
  std::vector<std::string> data = {"--bytes", calib("en"), calib("de"), "--seq-len", "128", "--max-tokens", "4096"};
  auto with_data = [&](std::vector<std::string> args) {
    args.insert(args.end(), data.begin(), data.end());
    return args;
  };
  REQUIRE(run_moeforge(with_data({"observe", moe, "--out", (dir / "s.safetensors").string(), "--quiet"})).status == 0);
  FileStats usage = read_stats(dir / "s.safetensors").merged();
  Checkpoint source(moe);
  write_bytes(dir / "pairs.json", R"({"0": [[0, 1], [2, 3]], "1": [[0, 3], [1, 2]]})");
  struct Run {
    const char* method;
    std::vector<std::string> extra;
    double atol;  // float32 rounding; sub-moe goes through an eigendecomposition
  };
  for (const Run& run : {Run{"sub-moe", {"--groups", "2"}, 2e-5}, Run{"hcsmoe", {"--groups", "2"}, 1e-6},
                         Run{"msmoe", {"--groups-file", (dir / "pairs.json").string(), "--no-permute"}, 1e-6},
                         Run{"msmoe", {"--groups-file", (dir / "pairs.json").string()}, 1e-6}}) {
    bool aligned = run.method == std::string("msmoe") && run.extra.size() == 2;
    CAPTURE(run.method);
    CAPTURE(aligned);
    std::string out = (dir / (std::string(run.method) + (aligned ? "-aligned" : ""))).string();
    auto args = with_data({"merge-experts", moe, out, "--method", run.method, "--report", out + ".json", "--plot", out + ".svg", "--quiet"});
    args.insert(args.end(), run.extra.begin(), run.extra.end());
    REQUIRE(run_moeforge(args).status == 0);
    auto report = nlohmann::json::parse(read_text(out + ".json"));
    CHECK(nlohmann::json::parse(read_text(fs::path(out) / "config.json"))["num_local_experts"] == 2);
    Checkpoint merged(out);
    for (int l = 0; l < 2; ++l) {
      const auto& groups = report["groups"][l];
      REQUIRE(groups.size() == 2);
      const VecD& count = usage.experts[static_cast<size_t>(l)].count;
      for (int g = 0; g < 2; ++g) {
        std::vector<int> members = groups[g];
        double total = 0;
        for (int e : members) total += count[e];
        for (const char* proj : {"w1", "w3", "w2"}) {
          auto got = expert_weights(merged, l, g, proj);
          std::vector<std::vector<double>> w;
          for (int e : members) w.push_back(expert_weights(source, l, e, proj));
          if (!aligned) {
            double worst = 0;
            for (size_t i = 0; i < got.size(); ++i) {
              double want = 0;
              for (size_t m = 0; m < members.size(); ++m) want += count[members[m]] / total * w[m][i];
              worst = std::max(worst, std::fabs(got[i] - want));
            }
            CHECK(worst <= run.atol);
            continue;
          }
          // Aligned pairs: every merged neuron is f_leader × the leader's neuron + f_other × one
          // neuron of the other member, and those neurons form a permutation.
          REQUIRE(members.size() == 2);
          int leader = count[members[0]] >= count[members[1]] ? 0 : 1, other = 1 - leader;
          double fl = count[members[leader]] / total, fo = count[members[other]] / total;
          bool down = std::string(proj) == "w2";
          const int64_t I = 172, H = 64;
          auto neuron = [&](const std::vector<double>& t, int64_t n, int64_t k) { return down ? t[k * I + n] : t[n * H + k]; };
          std::vector<bool> used(I, false);
          double worst = 0;
          for (int64_t n = 0; n < I; ++n) {
            int64_t best = -1;
            double best_err = 1e30;
            for (int64_t p = 0; p < I; ++p) {
              double err = 0;
              for (int64_t k = 0; k < H; ++k)
                err = std::max(err, std::fabs(neuron(got, n, k) - fl * neuron(w[leader], n, k) - fo * neuron(w[other], p, k)));
              if (err < best_err) best_err = err, best = p;
            }
            worst = std::max(worst, best_err);
            used[best] = true;
          }
          CHECK(worst <= run.atol);
          CHECK(std::count(used.begin(), used.end(), true) == I);
        }
        // The merged router row is the same weighted mean of the members' rows.
        std::string gate = "model.layers." + std::to_string(l) + ".block_sparse_moe.gate.weight";
        auto rows = read_f64(source.require_tensor(gate)), merged_rows = read_f64(merged.require_tensor(gate));
        for (int64_t k = 0; k < 64; ++k) {
          double want = 0;
          for (int e : members) want += count[e] / total * rows[e * 64 + k];
          CHECK(merged_rows[g * 64 + k] == doctest::Approx(want).epsilon(1e-6));
        }
      }
    }
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
