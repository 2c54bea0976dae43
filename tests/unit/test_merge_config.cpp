// mergekit-yaml configs: parameter lookup against mergekit's ConfigReader (setting_cases,
// evaluate_setting_raw), the planner against MergePlanner runs (plan_cases: frankenmerge
// renumbering, base appending, optional lm_head, offset slices), and moeforge's own refusals.
#include <doctest/doctest.h>

#include <set>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "merge/dense_merge.hpp"
#include "merge/merge_config.hpp"

using namespace moeforge;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const json& cases() {
  static const json j = read_json_file(fs::path(MOEFORGE_SOURCE_DIR) / "tests/reference/mergekit/expected/cases.json");
  return j;
}

ModelResolver by_name() {
  return [](const std::string& r, const std::string&) { return r; };
}

int model_id(const MergeConfig& c, const std::string& name) {
  for (size_t i = 0; i < c.models.size(); ++i)
    if (c.models[i] == name) return static_cast<int>(i);
  FAIL("no model " << name);
  return -1;
}

// A planned (data-less) llama checkpoint holding every tensor a plan case mentions.
std::unique_ptr<Checkpoint> fake_model(const std::string& name, int layers, const std::set<std::string>& suffixes,
                                       const std::set<std::string>& globals) {
  std::vector<TensorInfo> tensors;
  auto add = [&](const std::string& n) {
    TensorInfo t;
    t.name = n;
    t.dtype = DType::kF16;
    t.shape = {4, 4};
    t.end = 32;
    tensors.push_back(t);
  };
  for (const auto& g : globals) add(g);
  for (int l = 0; l < layers; ++l)
    for (const auto& s : suffixes) add("model.layers." + std::to_string(l) + "." + s);
  json config = {{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}, {"num_hidden_layers", layers}, {"torch_dtype", "float16"},
                 {"tie_word_embeddings", globals.count("lm_head.weight") == 0}};
  return std::make_unique<Checkpoint>(name, config, std::move(tensors));
}

std::optional<double> value_of(const json& v) {
  if (v.is_null()) return std::nullopt;
  return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
}

}  // namespace

TEST_CASE("mergekit reference: parameter lookup equals ConfigReader") {
  for (const auto& c : cases()["setting_cases"]) {
    CAPTURE(c["description"].get<std::string>());
    CAPTURE(c["tensor_name"].get<std::string>());
    MergeConfig cfg = parse_merge_config(c["config"], "case", by_name());
    const SliceDef& slice = cfg.slices[c.value("slice_index", 0)];
    std::optional<int> model;
    if (!c["model"].is_null()) model = model_id(cfg, c["model"]);
    auto v = lookup_parameter(cfg, &slice, c["parameter"], model, c["tensor_name"], c["t"].get<double>());
    if (c.contains("error")) {
      CHECK_FALSE(v);  // required and unset: resolve_parameters refuses (tested below)
      continue;
    }
    auto fallback = value_of(c["default"]);
    auto want = value_of(c["value"]);
    std::optional<double> got = v ? v : fallback;
    CHECK(got.has_value() == want.has_value());
    if (got && want) CHECK(*got == *want);  // bit-exact: the same double expression as mergekit
  }
  for (const auto& c : cases()["evaluate_setting_raw"]) {
    Setting s = parse_setting(c["setting"], "case", "x");
    CHECK(evaluate_setting(s, c["tensor_name"], c["t"]).value() == c["value"].get<double>());
  }
}

TEST_CASE("mergekit reference: the planner equals MergePlanner") {
  for (const auto& c : cases()["plan_cases"]) {
    CAPTURE(c["description"].get<std::string>());
    MergeConfig cfg = parse_merge_config(c["config"], "case", by_name());
    std::set<std::string> suffixes, globals;
    for (const auto& t : c["planned_tensors_in_order"])
      for (const auto& src : t["sources"]) {
        std::string n = src[1];
        if (n.rfind("model.layers.", 0) == 0) suffixes.insert(n.substr(n.find('.', 13) + 1));
        else globals.insert(n);
      }
    std::vector<std::unique_ptr<Checkpoint>> owned;
    std::vector<const Checkpoint*> models;
    for (const auto& m : cfg.models) {
      owned.push_back(fake_model(m, c["input_num_hidden_layers"][m], suffixes, globals));
      models.push_back(owned.back().get());
    }
    auto planned = plan_merge_tensors(cfg, models);
    std::map<std::string, const MergedTensorPlan*> by_name;
    for (const auto& p : planned) by_name[p.name] = &p;
    CHECK(planned.size() == c["planned_tensors_in_order"].size());
    for (const auto& t : c["planned_tensors_in_order"]) {
      CAPTURE(t["output"].get<std::string>());
      REQUIRE(by_name.count(t["output"]));
      const MergedTensorPlan& p = *by_name[t["output"]];
      REQUIRE(p.models.size() == t["sources"].size());
      for (size_t k = 0; k < p.models.size(); ++k) {
        CHECK(cfg.models[static_cast<size_t>(p.models[k])] == t["sources"][k][0].get<std::string>());
        CHECK(p.inputs[k] == t["sources"][k][1].get<std::string>());
        for (const auto& [name, v] : t["per_model"][t["sources"][k][0].get<std::string>()].items()) {
          const std::string key = name;  // CAPTURE cannot take a structured binding in clang
          CAPTURE(key);
          auto want = value_of(v);
          CHECK(p.params.per_input[k].count(name) == (want ? 1u : 0u));
          if (want) CHECK(p.params.per_input[k].at(name) == *want);
        }
      }
      for (const auto& [name, v] : t["global"].items()) {
        auto want = value_of(v);
        CHECK(p.params.global.count(name) == (want ? 1u : 0u));
        if (want) CHECK(p.params.global.at(name) == *want);
      }
    }
    Plan plan = plan_dense_merge(cfg, models, {});
    CHECK(plan.config["num_hidden_layers"] == c["output_config"]["num_hidden_layers"]);
    if (c["config"].contains("dtype")) CHECK(plan.config["torch_dtype"] == c["output_config"]["torch_dtype"]);
  }
}

TEST_CASE("mergekit configs: refusals name the key") {
  auto refuse = [](const std::string& yaml_json, const std::string& part) {
    CAPTURE(yaml_json);
    try {
      MergeConfig c = parse_merge_config(json::parse(yaml_json), "cfg.yml", by_name());
      FAIL("accepted");
    } catch (const UsageError& e) {
      CHECK(std::string(e.what()).find(part) != std::string::npos);
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
  };
  refuse(R"({"merge_method": "tie", "models": [{"model": "a"}]})", "merge_method: unknown method \"tie\" (known: linear, slerp");
  refuse(R"({"merge_method": "ties", "models": [{"model": "a", "parameters": {"weight": 1}}]})", "ties needs base_model");
  refuse(R"({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [0.1, "x"]}}]})",
         "models[0].parameters.weight[1]: gradient entries must be numbers");
  refuse(R"({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": {"filter": "mlp", "value": 1}}}]})",
         "write it as a list");
  refuse(R"({"merge_method": "linear", "models": [{"model": "a"}], "tokenizer_source": "union"})", "tokenizer_source: union");
  refuse(R"({"merge_method": "linear", "models": [{"model": "a"}], "slices": []})", "exactly one of models: and slices:");
  refuse(R"({"merge_method": "passthrough", "slices": [{"sources": [{"model": "a", "layer_range": [3, 1]}]}]})", "layer_range: expected 0 <= start < end");
  refuse(R"({"merge_method": "linear", "models": [{"model": "a"}], "dtype": "float8"})", "dtype: \"float8\"");
  refuse(R"({"merge_method": "slerp", "base_model": "a", "slices": [{"sources": [{"model": "b", "layer_range": [0, 2]}, {"model": "c", "layer_range": [0, 2]}]}]})",
         "slices[0]: base_model \"a\" is not among the slice's sources");
}

TEST_CASE("mergekit configs: unknown keys, misplaced parameters and unmatched filters are warnings") {
  MergeConfig c = parse_merge_config(json::parse(R"({"merge_method": "ties", "base_model": "b", "foo": 1,
      "models": [{"model": "a", "parameters": {"weight": 1, "denisty": 0.5, "normalize": 1}}],
      "parameters": {"density": [{"filter": "self_atn", "value": 0.2}, {"value": 0.5}]}})"),
                                     "cfg.yml", by_name());
  std::string all;
  for (const auto& w : c.warnings) all += w + "\n";
  CHECK(all.find("cfg.yml: foo: not a mergekit-yaml key") != std::string::npos);
  CHECK(all.find("models[0].parameters.denisty: not a parameter of ties") != std::string::npos);
  CHECK(all.find("models[0].parameters.normalize: normalize is a global parameter") != std::string::npos);
  auto unmatched = unmatched_filters(c, {"model.layers.0.self_attn.q_proj.weight"});
  REQUIRE(unmatched.size() == 1);
  CHECK(unmatched[0] == "cfg.yml: parameters.density[0].filter: \"self_atn\" matches no tensor name");
  CHECK(unmatched_filters(c, {"model.layers.0.self_atn.q"}).empty());
}

TEST_CASE("mergekit configs: a required parameter missing for one tensor names model, tensor and keys") {
  MergeConfig c = parse_merge_config(json::parse(R"({"merge_method": "linear",
      "models": [{"model": "a", "parameters": {"weight": [{"filter": "mlp", "value": 0.9}]}}, {"model": "b", "parameters": {"weight": 1}}]})"),
                                     "cfg.yml", by_name());
  CHECK(resolve_parameters(c, c.slices[0], "x.mlp.y", {"x.mlp.y", "x.mlp.y"}, 0).per_input[0].at("weight") == 0.9);
  try {
    resolve_parameters(c, c.slices[0], "x.attn.y", {"x.attn.y", "x.attn.y"}, 0);
    FAIL("accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()) == "cfg.yml: models[0]: weight is required by linear for \"a\" (no value for tensor 'x.attn.y'); set "
                                   "models[0].parameters.weight or parameters.weight");
  }
}
