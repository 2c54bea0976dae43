// End to end: eval reproduces the btx-bytes bits per byte (aggregate and per window) of every
// reference model, observe reproduces the reference router statistics, inspect reads the file.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "formats/safetensors.hpp"
#include "formats/tensor_reader.hpp"
#include "engine/stats_file.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;

namespace {

const char* kDomains[] = {"en", "py", "de", "c"};

std::vector<std::string> eval_files() {
  std::vector<std::string> out;
  for (const char* d : kDomains) out.push_back(fixture(std::string("corpora/") + d + "/eval.txt").string());
  return out;
}

std::vector<double> expected_windows(const std::string& model, const std::string& domain) {
  static SafetensorsFile f(fixture("models/btx-bytes/expected_windows.safetensors"));
  for (const auto& t : f.tensors())
    if (t.name == "bits_per_window/" + model + "/" + domain) return read_f64(t);
  FAIL("no expected windows for " << model << "/" << domain);
  return {};
}

}  // namespace

TEST_CASE("eval: bits per byte of every btx-bytes model on every domain (atol 1e-4, per window too)") {
  auto expected = nlohmann::json::parse(read_text(fixture("models/btx-bytes/expected.json")));
  for (const char* model : {"base", "expert-en", "expert-py", "expert-de", "expert-c", "merged-dense-average", "merged-mixtral-top2"}) {
    CAPTURE(model);
    std::vector<std::string> args = {"eval", fixture(std::string("models/btx-bytes/") + model).string(), "--seq-len", "128", "--json", "--windows", "--bytes"};
    for (const auto& f : eval_files()) args.push_back(f);
    auto r = run_moeforge(args);
    REQUIRE(r.status == 0);
    auto j = nlohmann::json::parse(r.out);
    for (int d = 0; d < 4; ++d) {
      CAPTURE(kDomains[d]);
      const auto& f = j["files"][d];
      CHECK(f["windows"] == 512);
      CHECK(f["predictions"] == 512 * 127);
      double want = expected["bits_per_byte"][model][kDomains[d]].get<double>();
      CHECK(std::fabs(f["bits_per_byte"].get<double>() - want) <= 1e-4);
      auto windows = expected_windows(model, kDomains[d]);
      double worst = 0;
      for (size_t w = 0; w < 512; ++w) worst = std::max(worst, std::fabs(f["window_nll"][w].get<double>() / std::log(2.0) - windows[w]));
      CHECK(worst <= 1e-4);
    }
  }
}

TEST_CASE("eval --context scores only the later positions: the rest is what the window prefixes score") {
  // Causal attention: positions 1..63 of a 128-byte window score as the same 64-byte prefix
  // evaluated alone, so context 0 = context 64 + the prefixes (sums of NLL, predictions exact).
  ScratchDir dir("context");
  std::string text = read_text(fixture("corpora/de/eval.txt")).substr(0, 128 * 64), prefixes;
  for (size_t w = 0; w < 64; ++w) prefixes += text.substr(w * 128, 64);
  write_bytes(dir / "text.txt", text);
  write_bytes(dir / "prefixes.txt", prefixes);
  auto nll = [&](const std::string& file, const std::string& seq_len, const std::string& context) {
    auto r = run_moeforge({"eval", fixture("models/btx-bytes/expert-de").string(), "--seq-len", seq_len, "--context", context, "--json",
                           "--bytes", (dir / file).string()});
    REQUIRE(r.status == 0);
    auto f = nlohmann::json::parse(r.out)["files"][0];
    return std::pair{f["mean_nll"].get<double>() * f["predictions"].get<double>(), f["predictions"].get<int64_t>()};
  };
  auto [all, n_all] = nll("text.txt", "128", "0");
  auto [late, n_late] = nll("text.txt", "128", "64");
  auto [early, n_early] = nll("prefixes.txt", "64", "0");
  CHECK(n_late == 64 * 64);
  CHECK(n_all == n_late + n_early);
  CHECK(std::fabs(all - (late + early)) <= 1e-6 * all);
  auto r = run_moeforge({"eval", fixture("models/btx-bytes/expert-de").string(), "--seq-len", "64", "--context", "64", "--bytes", (dir / "text.txt").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("--context 64 leaves nothing to score") != std::string::npos);
}

TEST_CASE("observe: router statistics of the top-2 Mixtral equal the reference (counts exact up to near-ties)") {
  auto expected = nlohmann::json::parse(read_text(fixture("models/btx-bytes/expected.json")));
  ScratchDir dir("observe");
  for (const char* domain : kDomains) {
    CAPTURE(domain);
    std::string out = (dir / (std::string(domain) + ".safetensors")).string();
    auto r = run_moeforge({"observe", fixture("models/btx-bytes/merged-mixtral-top2").string(), "--bytes",
                           fixture(std::string("corpora/") + domain + "/eval.txt").string(), "--seq-len", "128", "--out", out, "--quiet"});
    REQUIRE(r.status == 0);
    CalibrationStats s = read_stats(out);
    const auto& ref = expected["router_stats_top2"]["stats"][domain];
    for (int l = 0; l < 2; ++l) {
      const auto& e = s.files[0].experts[l];
      const auto& want = ref["layer" + std::to_string(l)];
      CHECK(e.tokens == 65536);
      double ties1 = want["near_ties_top1_lt_1e_5"], ties2 = want["near_ties_top2_boundary_lt_1e_5"];
      for (int x = 0; x < 4; ++x) {
        CHECK(std::fabs(e.top1_count[x] - want["top1_counts"][x].get<double>()) <= ties1);
        CHECK(std::fabs(e.count[x] - want["top2_counts"][x].get<double>()) <= ties2);
        CHECK(std::fabs(e.prob_sum[x] / e.tokens - want["mean_prob"][x].get<double>()) <= 1e-5);
      }
    }
    if (std::string(domain) == "en") {
      r = run_moeforge({"inspect", out, "--json"});
      REQUIRE(r.status == 0);
      auto d = nlohmann::json::parse(r.out);
      CHECK(d["format"] == "moeforge-stats");
      CHECK(d["moe_layers"].size() == 2);
      CHECK(std::fabs(d["moe_layers"][0]["frequency"][0].get<double>() - 62130.0 / 65536) < 1e-3);
    }
  }
}

TEST_CASE("eval and observe refuse bad data with one clear line") {
  ScratchDir dir("evalbad");
  write_bytes(dir / "ids.jsonl", "{\"input_ids\": [1, 2, 99999]}\n");
  auto r = run_moeforge({"eval", fixture("models/tiny-llama").string(), "--data", (dir / "ids.jsonl").string()});
  CHECK(r.status == 3);
  CHECK(r.err.find("ids.jsonl:1") != std::string::npos);
  CHECK(r.err_lines() == 1);
  r = run_moeforge({"eval", fixture("models/tiny-llama").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("no data") != std::string::npos);
  // Group routing that transformers cannot run either (n_group must divide the experts).
  auto cfg = nlohmann::json::parse(read_text(fixture("models/tiny-deepseek-v3/config.json")));
  cfg["n_group"] = 3;
  std::filesystem::create_directories(dir / "ds");
  std::filesystem::copy_file(fixture("models/tiny-deepseek-v3/model.safetensors"), dir / "ds/model.safetensors");
  write_bytes(dir / "ds/config.json", cfg.dump());
  r = run_moeforge({"observe", (dir / "ds").string(), "--bytes", fixture("corpora/en/eval.txt").string(), "--out", (dir / "s.safetensors").string()});
  CHECK(r.status == 5);
  CHECK(r.err.find("n_group 3 does not divide the 8 experts") != std::string::npos);
  CHECK(r.err_lines() == 1);
  CHECK_FALSE(std::filesystem::exists(dir / "s.safetensors"));
}
