// End to end: dense merging through the binary. Every method runs from a mergekit-yaml config on
// noisy copies of the BTX experts and equals the tensor mergers (checked against mergekit's own
// results in the unit tests) applied by hand to the same files: the planner, parameter lookup and
// writer add nothing. Passthrough frankenmerges renumber layers and give a model the engine runs;
// gradients and filters act per layer and tensor; the verb's identities; MoE checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/sharded_writer.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/dense_merge.hpp"
#include "merge/tensor_producers.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string btx(const std::string& name) { return fixture("models/btx-bytes/" + name).string(); }

// A copy of a checkpoint with seeded noise on every tensor, so that merges are not trivial.
void noisy_copy(const fs::path& in, const fs::path& out, uint64_t seed, double std = 0.01) {
  Checkpoint c(in);
  Plan p;
  p.config = c.config();
  for (const TensorInfo* t : c.tensors()) p.tensors.push_back(with_noise(copy_tensor(*t, t->name, DType::kF32), t->dtype, std, seed));
  write_checkpoint(p, out, {});
}

bool same_bytes(const TensorInfo& a, const TensorInfo& b) {
  auto x = a.file->data(a), y = b.file->data(b);
  return a.dtype == b.dtype && a.shape == b.shape && x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0;
}

// Noisy BTX experts shared by the tests of this file (made once).
struct Models {
  ScratchDir dir{"merge-models"};
  Models() {
    noisy_copy(btx("expert-en"), dir / "en", 1);
    noisy_copy(btx("expert-py"), dir / "py", 2);
    noisy_copy(btx("expert-de"), dir / "de", 3);
  }
  std::string operator()(const std::string& n) const { return n == "base" ? btx("base") : (dir / n).string(); }
};
const Models& models() {
  static Models m;
  return m;
}

struct MethodCase {
  std::string method;
  std::vector<std::pair<std::string, json>> inputs;  // model, its parameters (input order as mergekit)
  bool base;
  json global;
};

std::vector<MethodCase> method_cases() {
  json gta_a = {{"weight", 0.6}, {"density", 0.7}}, gta_b = {{"weight", 0.4}, {"density", 0.5}};
  std::vector<MethodCase> v = {
      {"linear", {{"en", {{"weight", 0.6}}}, {"py", {{"weight", 0.4}}}}, false, json::object()},
      {"slerp", {{"base", json::object()}, {"en", json::object()}}, true, {{"t", 0.4}}},
      {"nuslerp", {{"en", {{"weight", 0.6}}}, {"py", {{"weight", 0.4}}}, {"base", json::object()}}, true, json::object()},
      {"multislerp", {{"en", {{"weight", 0.6}}}, {"py", {{"weight", 0.4}}}, {"base", json::object()}}, true, json::object()},
      {"karcher", {{"en", json::object()}, {"py", json::object()}, {"de", json::object()}}, false, json::object()},
      {"sce", {{"en", json::object()}, {"py", json::object()}, {"base", json::object()}}, true, {{"select_topk", 0.5}}},
      {"model_stock", {{"en", json::object()}, {"py", json::object()}, {"base", json::object()}}, true, json::object()},
      {"nearswap", {{"base", json::object()}, {"en", json::object()}}, true, {{"t", 0.01}}},
      {"arcee_fusion", {{"base", json::object()}, {"en", json::object()}}, true, json::object()},
      {"passthrough", {{"en", {{"scale", 0.5}}}}, false, json::object()},
  };
  for (const char* m : {"task_arithmetic", "ties", "dare_linear", "dare_ties", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear"}) {
    json a = gta_a, b = gta_b;
    if (std::string(m).rfind("della", 0) == 0) a["epsilon"] = 0.1, b["epsilon"] = 0.2;
    if (std::string(m).rfind("breadcrumbs", 0) == 0) a["gamma"] = 0.05;
    v.push_back({m, {{"en", a}, {"py", b}, {"base", json::object()}}, true, {{"lambda", 0.9}}});
  }
  return v;
}

json config_of(const MethodCase& c) {
  json cfg = {{"merge_method", c.method}, {"models", json::array()}};
  for (const auto& [m, params] : c.inputs) {
    if (m == "base" && c.base && c.inputs.back().first == "base" && c.method != "slerp" && c.method != "nearswap" && c.method != "arcee_fusion")
      continue;  // appended by mergekit's rules, not listed
    json e = {{"model", models()(m)}};
    if (!params.empty()) e["parameters"] = params;
    cfg["models"].push_back(e);
  }
  if (c.base) cfg["base_model"] = models()("base");
  if (!c.global.empty()) cfg["parameters"] = c.global;
  return cfg;
}

// The tensor merger applied by hand: inputs in mergekit's order, the method's defaults overridden
// by the case's values, seed 0.
std::vector<float> by_hand(const MethodCase& c, const std::vector<std::unique_ptr<Checkpoint>>& in, const std::string& name) {
  TensorMergeSpec s;
  s.method = find_merge_method(c.method);
  s.name = name;
  s.shape = in[0]->require_tensor(name).shape;
  s.per_model.resize(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    s.inputs.push_back(tensor_rows(in[k]->require_tensor(name), s.shape, std::nullopt));
    s.labels.push_back(c.inputs[k].first);
    if (c.base && c.inputs[k].first == "base" && s.method->base != BaseRule::kAsInput) s.base = static_cast<int>(k);
  }
  for (const auto& p : s.method->params)
    if (p.default_value) {
      if (!p.per_model) s.global[p.name] = *p.default_value;
      else
        for (auto& m : s.per_model) m[p.name] = *p.default_value;
    }
  for (const auto& [k, v] : c.global.items()) s.global[k] = v.get<double>();
  for (size_t k = 0; k < in.size(); ++k)
    for (const auto& [key, v] : c.inputs[k].second.items()) s.per_model[k][key] = v.get<double>();
  s.masks = seeded_masks(0, name);
  Shape shape = s.shape;
  auto m = make_tensor_merger(std::move(s));
  return merge_all(*m, shape);
}

}  // namespace

TEST_CASE("merge: every method from a mergekit-yaml config equals its tensor merger applied by hand") {
  ScratchDir dir("methods");
  for (const auto& c : method_cases()) {
    CAPTURE(c.method);
    fs::path cfg = dir / (c.method + ".yml"), out = dir / c.method;
    write_bytes(cfg, config_of(c).dump(2));  // JSON is YAML
    auto r = run_moeforge({"run", cfg.string(), "--out", out.string(), "--quiet"});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    Checkpoint merged(out);
    std::vector<std::unique_ptr<Checkpoint>> in;
    for (const auto& [m, params] : c.inputs) in.push_back(std::make_unique<Checkpoint>(models()(m)));
    CHECK(merged.tensors().size() == in[0]->tensors().size());
    size_t differ = 0, changed = 0;
    for (const TensorInfo* t : merged.tensors()) {
      std::vector<float> want = by_hand(c, in, t->name), got = read_f32(*t);
      differ += got != want;
      changed += got != read_f32(in[0]->require_tensor(t->name));
    }
    CHECK(differ == 0);
    CHECK(changed > 0);
    auto meta = json::parse(read_text(out / "moeforge.json"));
    CHECK(meta["recipe"]["kind"] == "mergekit-yaml");
    CHECK(meta["mergekit_config"]["merge_method"] == c.method);
  }
}

TEST_CASE("merge: a passthrough frankenmerge renumbers layers, scales by filter and runs in the engine") {
  ScratchDir dir("franken");
  std::string a = fixture("models/tiny-llama").string();
  noisy_copy(a, dir / "b", 7);
  std::string b = (dir / "b").string();
  write_bytes(dir / "franken.yml", "merge_method: passthrough\ndtype: float32\nslices:\n"
                                   "  - sources: [{model: " + a + ", layer_range: [0, 2]}]\n"
                                   "  - sources:\n      - model: " + b + "\n        layer_range: [1, 3]\n"
                                   "        parameters:\n          scale:\n            - filter: o_proj\n              value: 0.5\n            - value: 1\n");
  auto r = run_moeforge({"run", (dir / "franken.yml").string(), "--out", (dir / "out").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  Checkpoint out(dir / "out"), ca(a), cb(b);
  CHECK(out.config()["num_hidden_layers"] == 4);
  CHECK(out.tensors().size() == ca.tensors().size() + 9);  // one layer more (9 tensors per llama layer)
  CHECK(same_bytes(out.require_tensor("model.embed_tokens.weight"), ca.require_tensor("model.embed_tokens.weight")));  // first slice
  CHECK(same_bytes(out.require_tensor("model.norm.weight"), cb.require_tensor("model.norm.weight")));                  // last slice
  CHECK(same_bytes(out.require_tensor("model.layers.1.mlp.up_proj.weight"), ca.require_tensor("model.layers.1.mlp.up_proj.weight")));
  CHECK(same_bytes(out.require_tensor("model.layers.2.mlp.up_proj.weight"), cb.require_tensor("model.layers.1.mlp.up_proj.weight")));
  CHECK(same_bytes(out.require_tensor("model.layers.3.self_attn.q_proj.weight"), cb.require_tensor("model.layers.2.self_attn.q_proj.weight")));
  auto o = read_f32(out.require_tensor("model.layers.3.self_attn.o_proj.weight")), want = read_f32(cb.require_tensor("model.layers.2.self_attn.o_proj.weight"));
  for (auto& v : want) v *= 0.5f;
  CHECK(o == want);
  write_bytes(dir / "ids.jsonl", "[1, 5, 9, 200, 17, 3, 3, 40, 41, 42, 7, 100, 12, 13, 14, 15]\n");
  r = run_moeforge({"eval", (dir / "out").string(), "--data", (dir / "ids.jsonl").string(), "--seq-len", "16", "--json"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(std::isfinite(json::parse(r.out)["files"][0]["mean_nll"].get<double>()));
}

TEST_CASE("merge: gradients follow t = layer / (layers - 1), filters pick tensors, non-layer tensors use t = 0") {
  ScratchDir dir("gradient");
  std::string a = fixture("models/tiny-llama").string();
  noisy_copy(a, dir / "b", 8, 0.05);
  std::string b = (dir / "b").string();
  write_bytes(dir / "g.yml", "merge_method: slerp\nbase_model: " + a + "\nmodels: [{model: " + a + "}, {model: " + b + "}]\n" +
                                 "parameters:\n  t:\n    - filter: mlp.down_proj\n      value: 1\n    - value: [0, 1]\n");
  auto r = run_moeforge({"run", (dir / "g.yml").string(), "--out", (dir / "out").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  Checkpoint out(dir / "out"), ca(a), cb(b);
  for (const char* t : {"self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight"}) {
    CAPTURE(t);
    std::string l0 = std::string("model.layers.0.") + t, l1 = std::string("model.layers.1.") + t, l2 = std::string("model.layers.2.") + t;
    CHECK(same_bytes(out.require_tensor(l0), ca.require_tensor(l0)));  // t = 0: the base
    CHECK(same_bytes(out.require_tensor(l2), cb.require_tensor(l2)));  // t = 1: the other model
    CHECK(read_f32(out.require_tensor(l1)) != read_f32(ca.require_tensor(l1)));
    CHECK(read_f32(out.require_tensor(l1)) != read_f32(cb.require_tensor(l1)));
  }
  for (int l = 0; l < 3; ++l) {
    std::string n = "model.layers." + std::to_string(l) + ".mlp.down_proj.weight";
    CHECK(same_bytes(out.require_tensor(n), cb.require_tensor(n)));  // filter: t = 1 in every layer
  }
  CHECK(same_bytes(out.require_tensor("lm_head.weight"), ca.require_tensor("lm_head.weight")));  // outside the layers: t = 0
}

TEST_CASE("merge verb: identities, dtype, shards, dry run, provenance") {
  ScratchDir dir("verb");
  const auto& m = models();
  auto r = run_moeforge({"merge", (dir / "ta0").string(), "--method", "task_arithmetic", "--base", m("base"), "--model", m("en"), "--weight", "0"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(run_moeforge({"diff", (dir / "ta0").string(), m("base"), "--atol", "0"}).status == 0);
  r = run_moeforge({"merge", (dir / "one").string(), "--method", "linear", "--model", m("en"), "--weight", "1"});
  REQUIRE(r.status == 0);
  CHECK(run_moeforge({"diff", (dir / "one").string(), m("en"), "--atol", "0"}).status == 0);
  r = run_moeforge({"merge", (dir / "ties").string(), "--method", "ties", "--base", m("base"), "--model", m("en"), "--model", m("py"),
                    "--weight", "1,0.5", "--density", "0.5", "--dtype", "bf16", "--max-shard-size", "100KB"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(fs::exists(dir / "ties/model.safetensors.index.json"));
  Checkpoint t(dir / "ties");
  CHECK(t.config()["torch_dtype"] == "bfloat16");
  for (const TensorInfo* x : t.tensors()) CHECK(x->dtype == DType::kBF16);
  auto meta = json::parse(read_text(dir / "ties/moeforge.json"));
  CHECK(meta["verb"] == "merge");
  CHECK(meta["mergekit_config"]["merge_method"] == "ties");
  CHECK(meta["mergekit_config"]["models"][1]["parameters"]["weight"] == 0.5);
  CHECK(meta["mergekit_config"]["parameters"]["density"] == 0.5);
  r = run_moeforge({"merge", (dir / "dry").string(), "--method", "dare_ties", "--base", m("base"), "--model", m("en"), "--weight", "1",
                    "--density", "0.3", "--dry-run", "--json"});
  REQUIRE(r.status == 0);
  CHECK_FALSE(fs::exists(dir / "dry"));
  CHECK(json::parse(r.out)["tensors"].size() == 21);
  // Seeded: the same seed gives the same bytes, whatever --threads; another seed differs.
  std::vector<std::string> dare = {"merge", "", "--method", "dare_ties", "--base", m("base"), "--model", m("en"), "--model", m("py"),
                                   "--weight", "1", "--density", "0.3", "--seed", "5", "--threads"};
  auto run_dare = [&](const std::string& out, const std::string& threads, const std::string& seed) {
    auto a = dare;
    a[1] = (dir / out).string();
    a[a.size() - 2] = seed;
    a.push_back(threads);
    return run_moeforge(a).status;
  };
  REQUIRE(run_dare("d1", "1", "5") == 0);
  REQUIRE(run_dare("d2", "2", "5") == 0);
  REQUIRE(run_dare("d3", "2", "6") == 0);
  CHECK(read_text(dir / "d1/model.safetensors") == read_text(dir / "d2/model.safetensors"));
  CHECK(read_text(dir / "d1/model.safetensors") != read_text(dir / "d3/model.safetensors"));
}

TEST_CASE("merge: two fine-tunes of one MoE merge expert tensors tensor by tensor") {
  ScratchDir dir("moe");
  std::string base = fixture("models/tiny-qwen2-moe").string();
  noisy_copy(base, dir / "a", 11);
  noisy_copy(base, dir / "b", 12);
  auto r = run_moeforge({"merge", (dir / "out").string(), "--method", "ties", "--base", base, "--model", (dir / "a").string(), "--model",
                         (dir / "b").string(), "--weight", "0.5", "--density", "0.5"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  Checkpoint out(dir / "out"), in(base);
  CHECK(out.tensors().size() == in.tensors().size());
  for (const TensorInfo* t : in.tensors()) CHECK(out.find_tensor(t->name) != nullptr);
  CHECK(out.config()["num_experts"] == in.config()["num_experts"]);
  write_bytes(dir / "ids.jsonl", "[1, 5, 9, 200, 17, 3, 3, 40, 41, 42, 7, 100, 12, 13, 14, 15]\n");
  r = run_moeforge({"eval", (dir / "out").string(), "--data", (dir / "ids.jsonl").string(), "--seq-len", "16", "--json"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(std::isfinite(json::parse(r.out)["files"][0]["mean_nll"].get<double>()));
}
