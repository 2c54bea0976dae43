// End to end: dense merging in recipes (a merge step whose output a compose step takes as an
// expert, the example recipes) and every malformed merge input refused with one clear line, a
// non-zero exit and nothing written.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string btx(const std::string& name) { return fixture("models/btx-bytes/" + name).string(); }

bool same_bytes(const TensorInfo& a, const TensorInfo& b) {
  auto x = a.file->data(a), y = b.file->data(b);
  return a.dtype == b.dtype && x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0;
}

void expect_refusal(const RunResult& r, const fs::path& out, const std::string& part) {
  CAPTURE(r.err);
  CHECK(r.status != 0);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find(part) != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".moeforge-steps"));
}

}  // namespace

TEST_CASE("recipes: the merge-compose example merges two experts and composes the result with two others") {
  ScratchDir dir("merge-compose");
  fs::path example = fs::path(source_dir()) / "recipes/examples/merge-compose.yaml";
  auto r = run_moeforge({"run", example.string(), "--out", (dir / "moe").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  r = run_moeforge({"merge", (dir / "merged").string(), "--method", "ties", "--base", btx("base"), "--model", btx("expert-en"), "--model",
                    btx("expert-de"), "--weight", "0.5", "--density", "0.7"});
  REQUIRE(r.status == 0);
  Checkpoint moe(dir / "moe"), merged(dir / "merged"), py(btx("expert-py"));
  CHECK(moe.config()["model_type"] == "mixtral");
  CHECK(moe.config()["num_local_experts"] == 3);
  for (int l = 0; l < 2; ++l) {
    std::string p = "model.layers." + std::to_string(l);
    CHECK(same_bytes(moe.require_tensor(p + ".block_sparse_moe.experts.0.w1.weight"), merged.require_tensor(p + ".mlp.gate_proj.weight")));
    CHECK(same_bytes(moe.require_tensor(p + ".block_sparse_moe.experts.0.w2.weight"), merged.require_tensor(p + ".mlp.down_proj.weight")));
    CHECK(same_bytes(moe.require_tensor(p + ".block_sparse_moe.experts.1.w3.weight"), py.require_tensor(p + ".mlp.up_proj.weight")));
  }
  auto meta = json::parse(read_text(dir / "moe/moeforge.json"));
  CHECK(meta["recipe"]["steps"][0].contains("merge"));
  CHECK_FALSE(fs::exists(dir / "moe.moeforge-steps"));
  // The mergekit-yaml example runs as it is.
  fs::path ties = fs::path(source_dir()) / "recipes/examples/mergekit-ties.yml";
  r = run_moeforge({"run", ties.string(), "--out", (dir / "ties").string(), "--dry-run"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("ties of 3 inputs") != std::string::npos);
}

TEST_CASE("recipes: @stepN names only earlier steps") {
  ScratchDir dir("refs");
  write_bytes(dir / "r.yaml", "output: out\nsteps:\n  - merge: {method: linear, model: [" + btx("expert-en") + "], weight: 1}\n"
                                  "  - compose: {expert: [\"@step1\", \"@step2\"]}\n");
  expect_refusal(run_moeforge({"run", (dir / "r.yaml").string()}), dir / "out", "steps[1].compose: \"@step2\" names no earlier step");
}

TEST_CASE("merge: malformed inputs are refused with one line, nothing written") {
  ScratchDir dir("bad");
  const fs::path out = dir / "out";
  const std::string base = btx("base"), en = btx("expert-en");
  auto config = [&](const std::string& yaml) {
    write_bytes(dir / "c.yml", yaml);
    return run_moeforge({"run", (dir / "c.yml").string(), "--out", out.string()});
  };
  auto models = "models:\n  - model: " + en + "\n    parameters: {weight: 1, density: 0.5}\n";
  expect_refusal(config("merge_method: tie\nbase_model: " + base + "\n" + models), out,
                 "merge_method: unknown method \"tie\" (known: linear, slerp, nuslerp, multislerp, karcher, task_arithmetic, ties");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "tie", "--model", en}), out, "--method: must be one of linear, slerp");
  expect_refusal(config("merge_method: ties\n" + models), out, "ties needs base_model");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "dare_ties", "--model", en, "--weight", "1"}), out, "give --base PATH");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "linear", "--model", fixture("models/tiny-llama").string(), "--model",
                               fixture("models/tiny-mistral").string(), "--weight", "1"}),
                 out, "tensor 'model.layers.0.self_attn.k_proj.weight': shapes differ: [32, 64] in " + fs::weakly_canonical(fixture("models/tiny-llama")).string() +
                          ", [64, 64] in " + fs::weakly_canonical(fixture("models/tiny-mistral")).string());
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "ties", "--base", base, "--model", en, "--weight", "1", "--density", "1.5"}), out,
                 "density must be in (0, 1], found 1.5");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "ties", "--base", base, "--model", en, "--weight", "1", "--density", "0"}), out,
                 "density must be in (0, 1], found 0");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "della", "--base", base, "--model", en, "--weight", "1", "--density", "0.9"}), out,
                 "density ± epsilon must be in (0, 1), found density 0.9, epsilon 0.15");
  expect_refusal(config("merge_method: linear\nmodels:\n  - model: " + en + "\n    parameters:\n      weight: [0.5, high]\n"), out,
                 "models[0].parameters.weight[1]: gradient entries must be numbers, found \"high\"");
  expect_refusal(config("merge_method: ties\nbase_model: meta-llama/Llama-3.1-8B\n" + models), out,
                 "base_model: \"meta-llama/Llama-3.1-8B\" is not a local model directory");
  expect_refusal(run_moeforge({"merge", out.string(), "--method", "linear", "--model", "mistralai/Mistral-7B-v0.1", "--weight", "1"}), out,
                 "moeforge reads local checkpoints only: download the model first (e.g. huggingface-cli download mistralai/Mistral-7B-v0.1 --local-dir DIR)");
  expect_refusal(config("merge_method: linear\nmodels:\n  - model: " + en + "+adapters/lora\n    parameters: {weight: 1}\n"), out,
                 "merging LoRA adapters (model+lora) is not supported");
  expect_refusal(config("merge_method: linear\ntokenizer_source: union\nmodels:\n  - model: " + en + "\n    parameters: {weight: 1}\n"), out,
                 "tokenizer_source: union");
  expect_refusal(config("merge_method: passthrough\nslices:\n  - sources: [{model: " + en + ", layer_range: [0, 3]}]\n"), out,
                 "slices[0].sources[0].layer_range: [0, 3] is past the 2 layers of");
  expect_refusal(config("merge_method: passthrough\nmodels:\n  - model: " + en + "\n  - model: " + base + "\n"), out,
                 "passthrough copies exactly one model's tensor");
  expect_refusal(config("merge_method: linear\nmodels:\n  - model: " + en + "\n"), out, "weight is required by linear for");
  // A filter that selects nothing is a warning: the merge runs.
  auto r = config("merge_method: ties\nbase_model: " + base + "\n" + models + "parameters:\n  density:\n    - filter: self_atn\n      value: 0.2\n    - value: 1\n");
  CHECK(r.status == 0);
  CHECK(r.err.find("parameters.density[0].filter: \"self_atn\" matches no tensor name") != std::string::npos);
  CHECK(fs::exists(out / "model.safetensors"));
}

TEST_CASE("merge: tokenizer_source copies that model's tokenizer and needs a shared vocabulary") {
  ScratchDir dir("tok");
  const std::string tok = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}, "added_tokens": []})";
  for (const char* m : {"base", "expert-en", "expert-de"}) {
    fs::copy(btx(m), dir / m, fs::copy_options::recursive);
    write_bytes(dir / m / "tokenizer.json", std::string(m) == "expert-en" ? R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}, "added_tokens": []} )" : tok);
  }
  auto yaml = [&](const std::string& source) {
    return "merge_method: task_arithmetic\nbase_model: base\ntokenizer_source: " + source +
           "\nmodels:\n  - model: expert-en\n    parameters: {weight: 0.5}\n  - model: expert-de\n    parameters: {weight: 0.5}\n";
  };
  write_bytes(dir / "ok.yml", yaml("expert-en"));
  auto r = run_moeforge({"run", (dir / "ok.yml").string(), "--out", (dir / "out").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(read_text(dir / "out/tokenizer.json") == read_text(dir / "expert-en/tokenizer.json"));  // that model's file, as it is
  write_bytes(dir / "expert-de/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "c": 1}}, "added_tokens": []})");
  write_bytes(dir / "bad.yml", yaml("base"));
  expect_refusal(run_moeforge({"run", (dir / "bad.yml").string(), "--out", (dir / "bad").string()}), dir / "bad",
                 "tokenizer_source: the vocabulary of " + fs::weakly_canonical(dir / "expert-de").string() + " differs from");
}
