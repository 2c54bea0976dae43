// End to end: fitted routers on the btx-bytes experts — fit-router changes only the routers and
// agrees with compose --router ridge; appending an expert and re-fitting equals composing all
// experts at once and beats the smaller MoE on the new domain; refusals write nothing.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

const char* kDomains[] = {"en", "py", "de", "c"};

std::string btx(const std::string& name) { return fixture("models/btx-bytes/" + name).string(); }
std::string corpus(const std::string& d, const std::string& f) { return fixture("corpora/" + d + "/" + f + ".txt").string(); }

// compose of the first n btx experts; data options appended by the caller.
std::vector<std::string> compose_first(int n, const std::string& out) {
  std::vector<std::string> a = {"compose"};
  for (int i = 0; i < n; ++i) a.insert(a.end(), {"--expert", btx(std::string("expert-") + kDomains[i])});
  a.push_back(out);
  return a;
}

// 4096 calibration bytes of each of the first n domains: quick, and enough to separate them.
void add_bytes(std::vector<std::string>& a, const char* option, int n) {
  a.push_back(option);
  for (int i = 0; i < n; ++i) a.push_back(corpus(kDomains[i], "calib"));
  a.insert(a.end(), {"--seq-len", "128", "--max-tokens", "4096"});
}

bool same_tensors(const fs::path& a, const fs::path& b) { return run_moeforge({"diff", a.string(), b.string()}).status == 0; }

std::vector<double> tensor(const fs::path& dir, const std::string& name) {
  moeforge::Checkpoint c(dir);
  return moeforge::read_f64(c.require_tensor(name));
}

std::string router(int layer) { return "model.layers." + std::to_string(layer) + ".block_sparse_moe.gate.weight"; }

double bits_per_byte(const fs::path& model, const char* domain) {
  auto r = run_moeforge({"eval", model.string(), "--bytes", corpus(domain, "eval"), "--seq-len", "128", "--max-tokens", "8192", "--json"});
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out)["files"][0]["bits_per_byte"].get<double>();
}

}  // namespace

TEST_CASE("fit-router: only the routers change; the same data and kind give compose --router ridge's rows; --report before/after") {
  ScratchDir dir("fit-router");
  auto compose = compose_first(4, (dir / "composed").string());
  compose.insert(compose.end(), {"--router", "ridge"});
  add_bytes(compose, "--router-bytes", 4);
  REQUIRE(run_moeforge(compose).status == 0);

  std::vector<std::string> fit = {"fit-router", btx("merged-mixtral-top2"), (dir / "refit").string(), "--report", (dir / "r.json").string()};
  add_bytes(fit, "--bytes", 4);
  auto r = run_moeforge(fit);
  REQUIRE(r.status == 0);
  CHECK(same_tensors(dir / "refit", dir / "composed"));

  r = run_moeforge({"diff", (dir / "refit").string(), btx("merged-mixtral-top2"), "--json"});
  auto d = nlohmann::json::parse(r.out);
  CHECK(d["summary"]["differing"] == 2);
  for (const auto& t : d["tensors"])
    CHECK_MESSAGE(t["equal"].get<bool>() == (t["name"].get<std::string>().find("gate.weight") == std::string::npos), t["name"]);
  CHECK(read_text(dir / "refit/config.json") == read_text(fs::path(btx("merged-mixtral-top2")) / "config.json"));

  auto report = nlohmann::json::parse(read_text(dir / "r.json"));
  CHECK(report["router"] == "ridge");
  REQUIRE(report["layers"].size() == 2);
  for (const auto& l : report["layers"]) {  // fitted on this data, ridge must route it better than the centroid rows did
    CHECK(l["after"]["accuracy"].get<double>() > l["before"]["accuracy"].get<double>() + 0.05);
    CHECK(l["after"]["per_data_file"].size() == 4);
  }
}

TEST_CASE("compose --moe: an appended expert keeps what was there; re-fitted, it equals composing all at once and wins on its domain") {
  ScratchDir dir("append");
  auto three = compose_first(3, (dir / "three").string());
  three.insert(three.end(), {"--router", "ridge"});
  add_bytes(three, "--router-bytes", 3);
  REQUIRE(run_moeforge(three).status == 0);
  auto four = compose_first(4, (dir / "four").string());
  four.insert(four.end(), {"--router", "ridge"});
  add_bytes(four, "--router-bytes", 4);
  REQUIRE(run_moeforge(four).status == 0);

  std::vector<std::string> grow = {"compose", "--moe", (dir / "three").string(), "--expert", btx("expert-c"), (dir / "grown").string(),
                                   "--router", "ridge"};
  add_bytes(grow, "--router-bytes", 4);
  REQUIRE(run_moeforge(grow).status == 0);
  CHECK(same_tensors(dir / "grown", dir / "four"));  // the experts' shared weights are identical, so keeping them is exact
  CHECK(nlohmann::json::parse(read_text(dir / "grown/config.json"))["num_local_experts"] == 4);
  CHECK(bits_per_byte(dir / "grown", "c") < bits_per_byte(dir / "three", "c") - 0.05);

  // Not re-fitted: the existing rows and experts stay bit for bit, the new row is the new expert's centroid.
  std::vector<std::string> keep = {"compose", "--moe", (dir / "three").string(), "--expert", btx("expert-c"), (dir / "kept").string(),
                                   "--router", "centroid", "--router-bytes", corpus("c", "calib"), "--seq-len", "128", "--max-tokens", "4096"};
  REQUIRE(run_moeforge(keep).status == 0);
  for (int l = 0; l < 2; ++l) {
    auto before = tensor(dir / "three", router(l)), after = tensor(dir / "kept", router(l));
    REQUIRE(after.size() == before.size() * 4 / 3);
    CHECK(std::equal(before.begin(), before.end(), after.begin()));
    const std::string w1 = "model.layers." + std::to_string(l) + ".block_sparse_moe.experts.2.w1.weight";
    CHECK(tensor(dir / "three", w1) == tensor(dir / "kept", w1));
  }
}

TEST_CASE("fitted routers refuse bad requests with one line and write nothing") {
  ScratchDir dir("router-refuse");
  fs::path empty = dir / "empty.txt";
  write_bytes(empty, "");
  const std::string out = (dir / "o").string();
  auto expect = [&](std::vector<std::string> args, int status, const std::string& says) {
    auto r = run_moeforge(args);
    CHECK_MESSAGE(r.status == status, r.err);
    CHECK(r.err_lines() == 1);
    CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
    CHECK_FALSE(fs::exists(out));
  };
  std::vector<std::string> three_files = {"fit-router", btx("merged-mixtral-top2"), out};
  add_bytes(three_files, "--bytes", 3);
  expect(three_files, 2, "3 data files for 4 experts");
  std::vector<std::string> with_empty = {"fit-router", btx("merged-mixtral-top2"), out, "--bytes", corpus("en", "calib"), corpus("py", "calib"),
                                         corpus("de", "calib"), empty.string(), "--seq-len", "128"};
  expect(with_empty, 3, "empty.txt: no tokens");
  std::vector<std::string> zero_lambda = {"fit-router", btx("merged-mixtral-top2"), out, "--router-lambda", "0"};
  add_bytes(zero_lambda, "--bytes", 4);
  expect(zero_lambda, 2, "--router-lambda");
  std::vector<std::string> dense = {"fit-router", btx("base"), out};
  add_bytes(dense, "--bytes", 4);
  expect(dense, 5, "no router to fit");
  auto compose = compose_first(4, out);
  compose.insert(compose.end(), {"--router", "logistic"});
  add_bytes(compose, "--router-bytes", 2);
  expect(compose, 2, "one data file per expert");
}

TEST_CASE("recipe btx-fitted: compose then fit-router as steps equals compose --router ridge by hand") {
  ScratchDir dir("router-recipe");
  auto r = run_moeforge({"run", source_dir() + "/recipes/examples/btx-fitted.yaml", "--out", (dir / "r").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto compose = compose_first(4, (dir / "h").string());
  compose.insert(compose.end(), {"--router", "ridge", "--router-bytes"});
  for (const char* d : kDomains) compose.push_back(corpus(d, "calib"));
  compose.insert(compose.end(), {"--seq-len", "128", "--max-tokens", "16384"});
  REQUIRE(run_moeforge(compose).status == 0);
  CHECK(same_tensors(dir / "r", dir / "h"));
}

TEST_CASE("fitted routers on every family compose writes: fit-router reproduces compose's rows, and experts can be appended") {
  ScratchDir dir("router-families");
  std::vector<std::string> ids;  // three token-id files from disjoint id ranges, so the classes are learnable
  for (int c = 0; c < 3; ++c) {
    std::string text;
    for (int doc = 0; doc < 8; ++doc) {
      text += "[";
      for (int t = 0; t < 32; ++t) text += (t ? "," : "") + std::to_string(40 * c + (doc * 7 + t * 13) % 40);
      text += "]\n";
    }
    ids.push_back((dir / ("ids" + std::to_string(c) + ".jsonl")).string());
    write_bytes(ids.back(), text);
  }
  struct Case { const char* dense; const char* arch; };
  for (Case k : {Case{"tiny-llama", "mixtral"}, Case{"tiny-qwen2", "qwen2_moe"}, Case{"tiny-qwen3", "qwen3_moe"}, Case{"tiny-llama", "olmoe"}}) {
    CAPTURE(k.arch);
    const std::string dense = fixture(std::string("models/") + k.dense).string(), arch = k.arch;
    std::vector<std::string> compose = {"compose", "--expert", dense, "--expert", dense, "--expert", dense, (dir / arch).string(), "--output-arch",
                                        arch, "--base", dense, "--router", "ridge", "--seq-len", "32", "--router-data", ids[0], ids[1], ids[2]};
    REQUIRE(run_moeforge(compose).status == 0);
    auto r = run_moeforge({"fit-router", (dir / arch).string(), (dir / (arch + "-refit")).string(), "--seq-len", "32", "--data", ids[0], ids[1], ids[2]});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(same_tensors(dir / arch, dir / (arch + "-refit")));
    r = run_moeforge({"compose", "--moe", (dir / arch).string(), "--expert", dense, (dir / (arch + "-grown")).string(), "--router", "logistic",
                      "--seq-len", "32", "--router-data", ids[0], ids[1], ids[2], ids[0]});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    auto config = nlohmann::json::parse(read_text(dir / (arch + "-grown/config.json")));
    CHECK(config[arch == "mixtral" ? "num_local_experts" : "num_experts"] == 4);
  }
}

TEST_CASE("fit-router --stats: statistics in parts (observe --router-gram) give the data fit's first router; the parts add up") {
  ScratchDir dir("router-stats");
  const std::string moe = btx("merged-mixtral-top2");
  std::vector<std::string> whole = {"fit-router", moe, (dir / "stats-whole").string(), "--stats"}, parts = {"fit-router", moe,
                                                                                                           (dir / "stats-parts").string(), "--stats"};
  std::string part_experts;  // 0,0,1,1,...
  for (int e = 0; e < 4; ++e) {
    const std::string data = corpus(kDomains[e], "calib"), stem = (dir / kDomains[e]).string();
    REQUIRE(run_moeforge({"observe", moe, "--bytes", data, "--seq-len", "128", "--max-tokens", "4096", "--router-gram", "--out", stem + ".st"}).status == 0);
    whole.push_back(stem + ".st");
    // The same 4096 bytes as two observe runs of 2048 (the second skips the first's windows through a copy of its bytes).
    const std::string bytes = read_text(data).substr(0, 4096);
    write_bytes(stem + "-a.txt", bytes.substr(0, 2048));
    write_bytes(stem + "-b.txt", bytes.substr(2048));
    for (const char* half : {"-a", "-b"}) {
      REQUIRE(run_moeforge({"observe", moe, "--bytes", stem + half + ".txt", "--seq-len", "128", "--router-gram", "--out", stem + half + ".st"}).status == 0);
      parts.push_back(stem + half + ".st");
      part_experts += (part_experts.empty() ? "" : ",") + std::to_string(e);
    }
  }
  REQUIRE(run_moeforge(whole).status == 0);
  parts.insert(parts.end(), {"--stats-experts", part_experts});
  REQUIRE(run_moeforge(parts).status == 0);
  auto close = [&](const fs::path& a, const fs::path& b, const std::string& tensor_name) {
    auto r = run_moeforge({"diff", a.string(), b.string(), "--json"});
    const auto diff = nlohmann::json::parse(r.out);  // named: a temporary would die before the loop body
    for (const auto& t : diff["tensors"])
      if (t["name"] == tensor_name) return t["max_abs"].get<double>();
    return 1e9;
  };
  for (int l = 0; l < 2; ++l) CHECK(close(dir / "stats-whole", dir / "stats-parts", router(l)) <= 1e-6);
  // Layer 0's router input does not depend on any router: the statistics fit equals the data fit there.
  std::vector<std::string> data = {"fit-router", moe, (dir / "data").string()};
  add_bytes(data, "--bytes", 4);
  REQUIRE(run_moeforge(data).status == 0);
  CHECK(close(dir / "stats-whole", dir / "data", router(0)) <= 1e-6);
  CHECK(close(dir / "stats-whole", dir / "data", router(1)) > 1e-3);  // layer 1 saw the centroid layer-0 router, not the fitted one
}
