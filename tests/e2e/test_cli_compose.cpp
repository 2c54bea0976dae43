// End to end: compose and upcycle through the binary — the BTX recipe, dry runs, byte-identical
// outputs for any thread count, and refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string btx(const std::string& name) { return fixture("models/btx-bytes/" + name).string(); }
std::string corpus(const std::string& d, const std::string& f) { return fixture("corpora/" + d + "/" + f + ".txt").string(); }

std::vector<std::string> btx_compose(const std::string& out) {
  std::vector<std::string> a = {"compose", "--expert", btx("expert-en"), "--expert", btx("expert-py"), "--expert", btx("expert-de"),
                                "--expert", btx("expert-c"), out, "--seq-len", "128", "--router", "centroid", "--router-bytes"};
  for (const char* d : {"en", "py", "de", "c"}) a.push_back(corpus(d, "calib"));
  return a;
}

}  // namespace

TEST_CASE("compose: the BTX recipe from the command line reproduces expected.json (within 0.01, observed 1e-6)") {
  ScratchDir dir("btx");
  auto r = run_moeforge(btx_compose((dir / "moe").string()));
  REQUIRE(r.status == 0);
  std::vector<std::string> eval = {"eval", (dir / "moe").string(), "--seq-len", "128", "--json", "--bytes"};
  for (const char* d : {"en", "py", "de", "c"}) eval.push_back(corpus(d, "eval"));
  r = run_moeforge(eval);
  REQUIRE(r.status == 0);
  auto got = nlohmann::json::parse(r.out);
  auto expected = nlohmann::json::parse(read_text(fixture("models/btx-bytes/expected.json")));
  int i = 0;
  for (const char* d : {"en", "py", "de", "c"}) {
    double want = expected["bits_per_byte"]["merged-mixtral-top2"][d];
    CHECK(std::fabs(got["files"][i++]["bits_per_byte"].get<double>() - want) <= 1e-4);
  }
  auto meta = nlohmann::json::parse(read_text(dir / "moe/moeforge.json"));
  CHECK(meta["verb"] == "compose");
  CHECK(meta["options"]["router"] == "centroid");
  CHECK(meta["inputs"].size() == 8);
}

TEST_CASE("compose: --dry-run writes nothing; outputs do not depend on --threads") {
  ScratchDir dir("dry");
  auto args = btx_compose((dir / "dry").string());
  args.push_back("--dry-run");
  args.push_back("--json");
  auto r = run_moeforge(args);
  REQUIRE(r.status == 0);
  CHECK_FALSE(fs::exists(dir / "dry"));
  auto plan = nlohmann::json::parse(r.out);
  CHECK(plan["tensors"].size() == 41);
  CHECK(plan["config"]["model_type"] == "mixtral");
  CHECK(plan["notes"].dump().find("config model_type: \\\"llama\\\" → \\\"mixtral\\\"") != std::string::npos);
  for (const char* threads : {"1", "3"}) {
    r = run_moeforge({"compose", "--expert", btx("expert-en"), "--expert", btx("expert-c"), (dir / threads).string(), "--router",
                      "random", "--seed", "5", "--dtype", "bf16", "--threads", threads});
    REQUIRE(r.status == 0);
  }
  CHECK(read_text(dir / "1/model.safetensors") == read_text(dir / "3/model.safetensors"));
  CHECK(read_text(dir / "1/config.json") == read_text(dir / "3/config.json"));
}

TEST_CASE("compose and upcycle refuse bad requests before writing") {
  ScratchDir dir("refuse");
  auto out = (dir / "o").string();
  auto r = run_moeforge({"compose", "--expert", btx("expert-en"), "--expert", fixture("models/tiny-llama").string(), out});
  CHECK(r.status == 4);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find("expert-en") != std::string::npos);
  CHECK(r.err.find("tiny-llama") != std::string::npos);
  r = run_moeforge({"compose", "--expert", btx("expert-en"), out, "--router", "centroid"});
  CHECK(r.status == 2);
  CHECK(r.err.find("one data file per expert") != std::string::npos);
  r = run_moeforge({"compose", out});
  CHECK(r.status == 2);
  r = run_moeforge({"upcycle", fixture("models/tiny-mixtral").string(), out, "--experts", "4"});
  CHECK(r.status == 5);
  CHECK(r.err.find("MoE") != std::string::npos);
  r = run_moeforge({"upcycle", fixture("models/tiny-llama").string(), out, "--granularity", "5"});
  CHECK(r.status == 2);
  CHECK(r.err.find("must divide the FFN width 96") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o"));
  r = run_moeforge({"upcycle", fixture("models/tiny-llama").string(), out, "--experts", "4", "--granularity", "2"});
  CHECK(r.status == 0);
  auto cfg = nlohmann::json::parse(read_text(dir / "o/config.json"));
  CHECK(cfg["num_local_experts"] == 8);
  CHECK(cfg["num_experts_per_tok"] == 4);
  CHECK(cfg["intermediate_size"] == 48);
}
