// merge-experts on gpt_oss (tests/reference/families: tiny-gpt-oss plain and MXFP4): a merged
// expert is the usage-weighted average of its members' weights and biases (MXFP4 dequantised),
// kept experts are the input's exactly, router rows and bias are merged alike, the config follows;
// every method runs and the result evaluates; identity grouping reproduces the model.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "model/expert_storage.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string model(const std::string& dir) { return family_model(dir).string(); }
std::string corpus() { return fixture("corpora/en/eval.txt").string(); }

double mean_nll(const std::string& dir) {
  RunResult r = run_moeforge({"eval", dir, "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024", "--json"});
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out)["files"].back()["mean_nll"].get<double>();
}

std::string write_groups(const ScratchDir& scratch, const std::string& name, const std::string& json) {
  fs::path p = scratch / name;
  write_bytes(p, json);
  return p.string();
}

// Output expert -> (input member, weight) from a --report: weights are the members' usage
// (score = routed share) normalised within the group.
using Groups = std::map<int, std::vector<std::pair<int, double>>>;
Groups groups_of(const nlohmann::json& layer) {
  Groups g;
  for (const auto& e : layer["experts"]) g[e["new_index"].get<int>()].push_back({e["expert"].get<int>(), e["score"].get<double>()});
  for (auto& [j, members] : g) {
    double total = 0;
    for (auto& [m, w] : members) total += w;
    for (auto& [m, w] : members) w /= total;
  }
  return g;
}

// |got - want| within abs + rel·|want| for every element.
void check_close(const std::vector<float>& got, const std::vector<double>& want, double abs, double rel, const char* what) {
  std::string part = what;
  CAPTURE(part);
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += std::abs(got[i] - want[i]) > abs + rel * std::abs(want[i]);
  CHECK(bad == 0);
}

std::vector<double> weighted(const std::vector<std::pair<int, double>>& members, const std::function<std::vector<float>(int)>& part) {
  std::vector<double> out;
  for (auto [m, w] : members) {
    std::vector<float> v = part(m);
    out.resize(v.size(), 0.0);
    for (size_t i = 0; i < v.size(); ++i) out[i] += w * v[i];
  }
  return out;
}

// Bytes of row `row` of a tensor whose first axis is the expert axis.
std::vector<std::byte> row_bytes(const Checkpoint& c, const std::string& name, int row) {
  const TensorInfo& t = c.require_tensor(name);
  auto all = c.data(t);
  size_t n = all.size() / static_cast<size_t>(t.shape[0]);
  return {all.begin() + static_cast<std::ptrdiff_t>(n * row), all.begin() + static_cast<std::ptrdiff_t>(n * (row + 1))};
}

// Every output expert of both layers against its input members; router rows and bias alike.
void check_merged(const fs::path& in_dir, const fs::path& out_dir, const nlohmann::json& report, double rel, bool plain_input) {
  Checkpoint in(in_dir), out(out_dir);
  ModelConfig ci = resolve_config(in.config(), "in"), co = resolve_config(out.config(), "out");
  for (int l = 0; l < 2; ++l) {
    CAPTURE(l);
    Groups g = groups_of(report["layers"][l]);
    const std::string router = "model.layers." + std::to_string(l) + ".mlp.router.";
    std::vector<double> rw_in = read_f64(in.require_tensor(router + "weight")), rb_in = read_f64(in.require_tensor(router + "bias"));
    std::vector<double> rw_out = read_f64(out.require_tensor(router + "weight")), rb_out = read_f64(out.require_tensor(router + "bias"));
    const size_t H = static_cast<size_t>(ci.hidden);
    for (const auto& [j, members] : g) {
      CAPTURE(j);
      ExpertFfn o = read_expert(out, co, l, j);
      std::vector<double> want_row(H, 0.0);
      double want_bias = 0;
      for (auto [m, w] : members) {
        for (size_t h = 0; h < H; ++h) want_row[h] += w * rw_in[m * H + h];
        want_bias += w * rb_in[static_cast<size_t>(m)];
      }
      for (size_t h = 0; h < H; ++h) CHECK(std::abs(rw_out[j * H + h] - want_row[h]) <= 1e-6 * (1 + std::abs(want_row[h])));
      CHECK(std::abs(rb_out[static_cast<size_t>(j)] - want_bias) <= 1e-6 * (1 + std::abs(want_bias)));
      if (members.size() == 1) {
        int m = members[0].first;
        ExpertFfn i = read_expert(in, ci, l, m);
        CHECK(o.gate == i.gate);
        CHECK(o.up == i.up);
        CHECK(o.down == i.down);
        CHECK(o.gate_bias == i.gate_bias);
        CHECK(o.up_bias == i.up_bias);
        CHECK(o.down_bias == i.down_bias);
        CHECK(rw_out[j * H] == rw_in[m * H]);
        if (plain_input)
          for (const char* part : {"gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"})
            CHECK(row_bytes(out, gpt_oss_expert_tensor(l, part), j) == row_bytes(in, gpt_oss_expert_tensor(l, part), m));
        continue;
      }
      auto member = [&](int m) { return read_expert(in, ci, l, m); };
      check_close(o.gate, weighted(members, [&](int m) { return member(m).gate; }), 1e-6, rel, "gate");
      check_close(o.up, weighted(members, [&](int m) { return member(m).up; }), 1e-6, rel, "up");
      check_close(o.down, weighted(members, [&](int m) { return member(m).down; }), 1e-6, rel, "down");
      // Biases stay in the input dtype (float32 here) for both inputs.
      check_close(o.gate_bias, weighted(members, [&](int m) { return member(m).gate_bias; }), 1e-6, 1e-6, "gate bias");
      check_close(o.up_bias, weighted(members, [&](int m) { return member(m).up_bias; }), 1e-6, 1e-6, "up bias");
      check_close(o.down_bias, weighted(members, [&](int m) { return member(m).down_bias; }), 1e-6, 1e-6, "down bias");
    }
  }
}

constexpr const char* kUneven = R"({"0": [[0, 2], [1], [3]], "1": [[0], [1, 3], [2]]})";

}  // namespace

TEST_CASE("merge-experts --method average on gpt_oss, plain and MXFP4: usage-weighted average of weights and biases") {
  ScratchDir scratch("oss-merge");
  std::string groups = write_groups(scratch, "groups.json", kUneven);
  for (const char* dir : {"tiny-gpt-oss", "tiny-gpt-oss-mxfp4"}) {
    std::string name = dir;
    CAPTURE(name);
    const bool plain = std::string(dir) == "tiny-gpt-oss";
    std::string stats = (scratch / (std::string(dir) + ".safetensors")).string();
    REQUIRE(run_moeforge({"observe", model(dir), "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024", "--out", stats, "--quiet"}).status == 0);
    fs::path out = scratch / (std::string(dir) + "-avg"), report = scratch / (std::string(dir) + "-avg.json");
    REQUIRE(run_moeforge({"merge-experts", model(dir), out.string(), "--method", "average", "--groups-file", groups, "--stats", stats,
                          "--report", report.string()}).status == 0);
    auto rep = nlohmann::json::parse(read_text(report));
    // Plain float32 in, float32 out: 1e-6. MXFP4 in: bfloat16 experts, within its rounding (2^-8 relative, half an ulp).
    check_merged(family_model(dir), out, rep, plain ? 1e-6 : std::ldexp(1.0, -8), plain);
    auto cfg = nlohmann::json::parse(read_text(out / "config.json"));
    CHECK(cfg["num_local_experts"] == 3);
    CHECK(cfg["experts_per_token"] == 2);
    CHECK(cfg["num_experts_per_tok"] == 2);
    CHECK_FALSE(cfg.contains("quantization_config"));
    Checkpoint result(out);
    CHECK(result.require_tensor(gpt_oss_expert_tensor(0, "gate_up_proj")).dtype == (plain ? DType::kF32 : DType::kBF16));
    CHECK(result.find_tensor(gpt_oss_expert_tensor(0, "gate_up_proj_blocks")) == nullptr);
    double merged = mean_nll(out.string()), base = mean_nll(model(dir));
    CHECK(std::isfinite(merged));
    CHECK(merged != base);
    if (!plain) {
      // The same merge written in float32: the dequantised members' average within 1e-6.
      fs::path out32 = scratch / "mx-f32";
      REQUIRE(run_moeforge({"merge-experts", model(dir), out32.string(), "--method", "average", "--groups-file", groups, "--stats", stats,
                            "--dtype", "f32"}).status == 0);
      check_merged(family_model(dir), out32, rep, 1e-6, false);
    }
  }
}

TEST_CASE("merge-experts on gpt_oss: every method runs; identity groups reproduce the model; one group caps experts_per_token") {
  ScratchDir scratch("oss-merge-methods");
  std::string identity = write_groups(scratch, "identity.json", R"({"0": [[0], [1], [2], [3]], "1": [[0], [1], [2], [3]]})");
  std::string one = write_groups(scratch, "one.json", R"({"0": [[0, 1, 2, 3]], "1": [[0, 1, 2, 3]]})");
  for (const char* dir : {"tiny-gpt-oss", "tiny-gpt-oss-mxfp4"}) {
    std::string name = dir;
    CAPTURE(name);
    const double base = mean_nll(model(dir));
    std::string same = (scratch / (std::string(dir) + "-same")).string();
    REQUIRE(run_moeforge({"merge-experts", model(dir), same, "--method", "average", "--groups-file", identity, "--uniform-weights"}).status == 0);
    CHECK(mean_nll(same) == base);
    std::string stats = (scratch / (std::string(dir) + ".safetensors")).string();
    REQUIRE(run_moeforge({"observe", model(dir), "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024", "--out", stats, "--quiet"}).status == 0);
    for (const std::vector<std::string>& method : {std::vector<std::string>{"--method", "sub-moe"}, {"--method", "sub-moe", "--rank", "8"},
                                                   {"--method", "hcsmoe"}, {"--method", "msmoe"}}) {
      CAPTURE(method.back());
      std::string out = (scratch / (std::string(dir) + "-" + method.back())).string();
      std::vector<std::string> args{"merge-experts", model(dir), out, "--groups", "2", "--stats", stats};
      args.insert(args.end(), method.begin(), method.end());
      REQUIRE(run_moeforge(args).status == 0);
      auto cfg = nlohmann::json::parse(read_text(fs::path(out) / "config.json"));
      CHECK(cfg["num_local_experts"] == 2);
      double nll = mean_nll(out);
      CHECK(std::isfinite(nll));
      CHECK(nll != base);
    }
    std::string single = (scratch / (std::string(dir) + "-one")).string();
    REQUIRE(run_moeforge({"merge-experts", model(dir), single, "--method", "average", "--groups-file", one, "--uniform-weights"}).status == 0);
    auto cfg = nlohmann::json::parse(read_text(fs::path(single) / "config.json"));
    CHECK(cfg["num_local_experts"] == 1);
    CHECK(cfg["experts_per_token"] == 1);
    CHECK(cfg["num_experts_per_tok"] == 1);
    CHECK(std::isfinite(mean_nll(single)));
  }
}

TEST_CASE("merge-experts on gpt_oss: groups out of range give one clear error and write nothing") {
  ScratchDir scratch("oss-merge-bad");
  std::string bad = write_groups(scratch, "bad.json", R"({"0": [[0, 4], [1], [2, 3]], "1": [[0], [1], [2, 3]]})");
  std::string out = (scratch / "out").string();
  for (const char* dir : {"tiny-gpt-oss", "tiny-gpt-oss-mxfp4"}) {
    RunResult r = run_moeforge({"merge-experts", model(dir), out, "--method", "average", "--groups-file", bad, "--uniform-weights"});
    CHECK(r.status != 0);
    CHECK(r.err.find("expert 4 does not exist (experts 0..3)") != std::string::npos);
    CHECK(r.err_lines() == 1);
    CHECK_FALSE(fs::exists(out));
  }
}
