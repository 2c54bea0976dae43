// End to end: recipes. Every shipped example runs and equals the same verbs run by hand (tensor
// data bit-identical); mergekit-moe configs build mergekit's layout; dry runs write nothing;
// bad recipes are refused with the file and key path, before anything is written.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/safetensors.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string example(const std::string& name) { return source_dir() + "/recipes/examples/" + name + ".yaml"; }
std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }
std::string calib(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

void expect_same_tensors(const fs::path& a, const fs::path& b) {
  auto r = run_moeforge({"diff", a.string(), b.string(), "--atol", "0", "--json"});
  CAPTURE(r.out.substr(0, 2000));
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["config_differences"].empty());
}

std::vector<std::string> btx_experts_args() {
  std::vector<std::string> a;
  for (const char* d : {"en", "py", "de", "c"}) {
    a.push_back("--expert");
    a.push_back(models(std::string("btx-bytes/expert-") + d));
  }
  return a;
}

}  // namespace

TEST_CASE("recipe examples equal the verbs run by hand") {
  ScratchDir dir("recipes");
  // btx-compose
  auto r = run_moeforge({"run", example("btx-compose"), "--out", (dir / "r1").string()});
  REQUIRE(r.status == 0);
  std::vector<std::string> compose = {"compose"};
  for (const auto& a : btx_experts_args()) compose.push_back(a);
  for (const auto& a : std::vector<std::string>{(dir / "h1").string(), "--router", "centroid", "--seq-len", "128", "--router-bytes",
                                                calib("en"), calib("py"), calib("de"), calib("c")})
    compose.push_back(a);
  REQUIRE(run_moeforge(compose).status == 0);
  expect_same_tensors(dir / "r1", dir / "h1");
  CHECK(fs::exists(dir / "r1/moeforge-recipe.yaml"));
  moeforge::SafetensorsFile f(dir / "r1/model.safetensors");
  CHECK(f.metadata().at("moeforge").find("\"recipe\"") != std::string::npos);

  // domain-prune
  REQUIRE(run_moeforge({"run", example("domain-prune"), "--out", (dir / "r2").string()}).status == 0);
  REQUIRE(run_moeforge({"prune", models("btx-bytes/merged-mixtral-top2"), (dir / "h2").string(), "--bytes", calib("de"), "--seq-len", "128",
                        "--keep", "1"}).status == 0);
  expect_same_tensors(dir / "r2", dir / "h2");

  // pipeline: compose → prune → merge-experts
  REQUIRE(run_moeforge({"run", example("pipeline"), "--out", (dir / "r3").string()}).status == 0);
  CHECK_FALSE(fs::exists(dir / "r3.moeforge-steps"));
  REQUIRE(run_moeforge({"prune", (dir / "h1").string(), (dir / "h3a").string(), "--bytes", calib("en"), calib("py"), "--seq-len", "128",
                        "--max-tokens", "16384", "--keep", "3"}).status == 0);
  REQUIRE(run_moeforge({"merge-experts", (dir / "h3a").string(), (dir / "h3").string(), "--method", "msmoe", "--bytes", calib("en"), calib("py"),
                        "--seq-len", "128", "--max-tokens", "16384", "--groups", "2"}).status == 0);
  expect_same_tensors(dir / "r3", dir / "h3");
}

TEST_CASE("mergekit-moe configs: docs' upcycling example builds mergekit's Mixtral layout") {
  ScratchDir dir("mergekit");
  auto r = run_moeforge({"run", example("mergekit-upcycle"), "--out", (dir / "up").string()});
  REQUIRE(r.status == 0);
  auto cfg = nlohmann::json::parse(read_text(dir / "up/config.json"));
  CHECK(cfg["model_type"] == "mixtral");
  CHECK(cfg["num_local_experts"] == 8);
  CHECK(cfg["num_experts_per_tok"] == 2);
  CHECK(cfg["torch_dtype"] == "bfloat16");
  CHECK(cfg["rms_norm_eps"] == 1e-5);  // the base's, not Mixtral's class default
  // Same tensor names and shapes as the HF tiny Mixtral (8 experts, block_sparse_moe layout).
  r = run_moeforge({"inspect", (dir / "up").string(), "--tensors", "--json"});
  auto ours = nlohmann::json::parse(r.out);
  r = run_moeforge({"inspect", models("tiny-mixtral"), "--tensors", "--json"});
  auto theirs = nlohmann::json::parse(r.out);
  REQUIRE(ours["tensors"].size() == theirs["tensors"].size());
  for (size_t i = 0; i < ours["tensors"].size(); ++i) {
    CHECK(ours["tensors"][i]["name"] == theirs["tensors"][i]["name"]);
    CHECK(ours["tensors"][i]["shape"] == theirs["tensors"][i]["shape"]);
  }
  // By hand: shared weights from the base, random gates with std 1, bf16.
  std::vector<std::string> compose = {"compose"};
  for (int i = 0; i < 8; ++i) {
    compose.push_back("--expert");
    compose.push_back(models("tiny-llama"));
  }
  for (const auto& a : std::vector<std::string>{(dir / "h").string(), "--base", models("tiny-llama"), "--shared", "base", "--router", "random",
                                                "--router-std", "1", "--dtype", "bf16"})
    compose.push_back(a);
  REQUIRE(run_moeforge(compose).status == 0);
  expect_same_tensors(dir / "up", dir / "h");
}

TEST_CASE("mergekit-moe hidden gates: prompts through the base model, as a compose step") {
  ScratchDir dir("mergekit-hidden");
  REQUIRE(run_moeforge({"run", example("mergekit-moe"), "--out", (dir / "moe").string()}).status == 0);
  auto cfg = nlohmann::json::parse(read_text(dir / "moe/config.json"));
  CHECK(cfg["num_local_experts"] == 4);
  auto recipe = read_text(dir / "moe/moeforge-recipe.yaml");
  CHECK(recipe.find("mergekit-hidden") != std::string::npos);
  CHECK(recipe.find("mergekit-moe") != std::string::npos);
  // Attention weights are the base's bit for bit (mergekit copies them from base_model).
  auto r = run_moeforge({"diff", (dir / "moe").string(), models("btx-bytes/base"), "--json"});
  auto d = nlohmann::json::parse(r.out);
  for (const auto& t : d["tensors"]) CHECK(t["equal"] == true);
  r = run_moeforge({"eval", (dir / "moe").string(), "--bytes", fixture("corpora/en/eval.txt").string(), "--seq-len", "128", "--max-tokens",
                    "4096", "--json"});
  CHECK(r.status == 0);
}

TEST_CASE("dry runs write nothing and plan later steps from earlier plans") {
  ScratchDir dir("dry");
  write_bytes(dir / "plannable.yaml", "output: out\nsteps:\n  - compose:\n      expert: [" + models("tiny-llama") + ", " + models("tiny-llama") +
                                          "]\n      router: random\n  - prune:\n      keep-list: keep.json\n  - convert:\n      dtype: bf16\n");
  write_bytes(dir / "keep.json", R"({"0": [1], "1": [0], "2": [1]})");
  auto r = run_moeforge({"run", (dir / "plannable.yaml").string(), "--dry-run", "--json"});
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out.substr(r.out.find("{\n  \"recipe\"")));
  CHECK(j["steps"].size() == 3);
  for (const auto& s : j["steps"]) CHECK_FALSE(s.contains("planned"));
  CHECK_FALSE(fs::exists(dir / "out"));
  CHECK_FALSE(fs::exists(dir / "out.moeforge-steps"));
  r = run_moeforge({"run", example("pipeline"), "--out", (dir / "p").string(), "--dry-run"});
  CHECK(r.status == 0);
  CHECK(r.out.find("not planned: needs the weights of step 1") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "p"));
  r = run_moeforge({"run", (dir / "plannable.yaml").string()});
  REQUIRE(r.status == 0);
  auto cfg = nlohmann::json::parse(read_text(dir / "out/config.json"));
  CHECK(cfg["num_local_experts"] == 1);
  CHECK(cfg["torch_dtype"] == "bfloat16");
  write_bytes(dir / "keep.yaml", "output: kept\nkeep_intermediate: true\nsteps:\n  - compose:\n      expert: [" + models("tiny-llama") +
                                     "]\n  - convert:\n      dtype: f16\n");
  REQUIRE(run_moeforge({"run", (dir / "keep.yaml").string()}).status == 0);
  CHECK(fs::exists(dir / "kept.moeforge-steps/step-1-compose/model.safetensors"));
}

TEST_CASE("bad recipes: file and key path in one line, nothing written") {
  ScratchDir dir("badrecipe");
  struct Case {
    std::string yaml, expect;
  };
  std::string llama = models("tiny-llama"), mixtral = models("tiny-mixtral"), stories = models("stories260k");
  std::vector<Case> cases = {
      {"output: o\nsteps:\n  - prune:\n      model: " + mixtral + "\n      kep: 2\n", "steps[0].prune.kep: unknown option"},
      {"output: o\nsteps:\n  - prune:\n      model: " + mixtral + "\n      keep: two\n", "steps[0].prune.keep: must be an integer"},
      {"output: o\nsteps:\n  - compose:\n      expert: [" + llama + "]\n  - prune:\n      ratio: 1.5\n", "steps[1].prune.ratio: must be in (0, 1)"},
      {"output: o\nsteps:\n  - compose:\n      expert: [missing-model]\n", "steps[0].compose.expert: "},
      {"output: o\nsteps:\n  - train:\n      epochs: 3\n", "steps[0].train: unknown step"},
      {"output: o\nsteps:\n  - convert:\n      input: " + llama + "\n      threads: 4\n", "steps[0].convert.threads: set by `moeforge run`"},
      {"output: o\nstepz: []\n", "stepz: unknown key"},
      {"output: o\nsteps:\n  - prune: {keep: 2\n", "not valid YAML (line"},
      {"steps:\n  - convert:\n      input: " + llama + "\n", "output: missing"},
      {"output: o\nbase_model: " + llama + "\nexperts:\n  - source_model: " + llama + "\n    positive_prompts: [\"a\"]\n  - source_model: " + llama + "\n",
       "experts[1].positive_prompts: required for gate_mode hidden"},
      {"output: o\nbase_model: " + llama + "\nexperts_per_token: 1\nexperts:\n  - source_model: mistralai/Mixtral-8x7B\n", "experts[0].source_model: \"mistralai/Mixtral-8x7B\" is not a local model"},
      {"output: o\nbase_model: " + stories + "\ngate_mode: hidden\nexperts_per_token: 1\nexperts:\n  - source_model: " + stories +
           "\n    positive_prompts: [\"a\"]\n",
       "stories260k: no tokenizer.json"},
  };
  int i = 0;
  for (const auto& c : cases) {
    fs::path file = dir / ("r" + std::to_string(i++) + ".yaml");
    write_bytes(file, c.yaml);
    auto r = run_moeforge({"run", file.string()});
    CAPTURE(c.yaml);
    CAPTURE(r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find(file.string()) != std::string::npos);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.err_lines() == 1);
  }
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().extension() == ".yaml");  // nothing written
}
