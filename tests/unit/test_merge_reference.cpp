// mergekit's own results (tests/reference/mergekit/expected, written by make_expected.py running
// mergekit a6e40288's merge methods, sparsify, ConfigReader and planner): every method case goes
// through moeforge's config reader, parameter resolution and tensor mergers. DARE and DELLA replay
// mergekit's recorded Bernoulli masks through the MaskSource seam (and check the keep
// probabilities DELLA asked for). Deterministic float32 cases must agree within 1e-5 of the
// tensor's largest magnitude and within the case's own elementwise tolerance; bf16 cases within
// one bf16 ulp (moeforge computes in float32 and rounds once, mergekit rounds after every op).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/dense_merge.hpp"
#include "merge/merge_config.hpp"
#include "merge/merge_registry.hpp"

using namespace moeforge;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path reference(const std::string& file) { return fs::path(MOEFORGE_SOURCE_DIR) / "tests/reference/mergekit/expected" / file; }

const json& cases() {
  static const json j = read_json_file(reference("cases.json"));
  return j;
}

ModelResolver by_name() {
  return [](const std::string& r, const std::string&) { return r; };
}

class Recorded : public MaskSource {
 public:
  std::map<size_t, std::vector<float>> masks;
  mutable std::map<size_t, std::vector<float>> probs;  // the keep probabilities moeforge asked for
  bool keep(size_t input, int64_t flat, float p) const override {
    auto& seen = probs[input];
    if (seen.size() <= static_cast<size_t>(flat)) seen.resize(static_cast<size_t>(flat) + 1, -1.0f);
    seen[static_cast<size_t>(flat)] = p;
    return masks.at(input).at(static_cast<size_t>(flat)) != 0;
  }
};

// Cases where moeforge deliberately differs from mergekit (README "Dense merging").
const std::map<std::string, std::string> kDeviations = {
    {"karcher_embed_mismatch_error", "mergekit loses karcher's embedding truncation and fails; moeforge crops like the other methods"},
    {"ta_nonembed_mismatch_skipped", "mergekit silently skips a model whose tensor has another shape; moeforge refuses, naming both files"},
};

struct Deviation {
  int cases = 0;
  double max_rel = 0, max_abs = 0;
};
std::map<std::string, Deviation>& report() {
  static std::map<std::string, Deviation> r;
  return r;
}

double param_value(const json& v) { return v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>(); }

void check_resolved(const json& c, const MergeConfig& cfg, const ResolvedParameters& r) {
  for (const auto& [name, v] : c["resolved_parameters"]["global"].items()) {
    const std::string key = name;  // CAPTURE cannot take a structured binding in clang
    CAPTURE(key);
    if (v.is_null()) CHECK_FALSE(r.global.count(name));
    else CHECK(r.global.at(name) == param_value(v));
  }
  const SliceDef& s = cfg.slices[0];
  for (size_t k = 0; k < s.sources.size(); ++k) {
    const json& expected = c["resolved_parameters"]["per_model"][cfg.models[static_cast<size_t>(s.sources[k].model)]];
    for (const auto& [name, v] : expected.items()) {
      const std::string key = name;  // CAPTURE cannot take a structured binding in clang
      CAPTURE(key);
      if (v.is_null()) CHECK_FALSE(r.per_input[k].count(name));
      else CHECK(r.per_input[k].at(name) == param_value(v));
    }
  }
}

// Runs one case; returns the output (float32, before rounding to the case's dtype).
std::vector<float> run_case(const json& c, const Checkpoint& file, const std::shared_ptr<Recorded>& masks, Shape* shape) {
  MergeConfig cfg = parse_merge_config(c["config"], c["name"].get<std::string>(), by_name());
  const SliceDef& slice = cfg.slices[0];
  std::vector<std::string> order, in_names(slice.sources.size(), c["tensor_name"].get<std::string>());
  for (const auto& s : slice.sources) order.push_back(cfg.models[static_cast<size_t>(s.model)]);
  if (c.contains("input_order")) CHECK(order == c["input_order"].get<std::vector<std::string>>());
  ResolvedParameters r = resolve_parameters(cfg, slice, c["tensor_name"], in_names, c["t"].get<double>());
  check_resolved(c, cfg, r);
  TensorMergeSpec spec;
  spec.method = cfg.method;
  spec.name = c["tensor_name"];
  std::vector<Shape> shapes;
  for (const auto& m : order) {
    shapes.push_back(file.require_tensor(c["inputs"][m]).shape);
    spec.labels.push_back(m);
    if (cfg.base_of(slice) && cfg.models[static_cast<size_t>(*cfg.base_of(slice))] == m && cfg.method->base != BaseRule::kAsInput && spec.base < 0)
      spec.base = static_cast<int>(spec.labels.size() - 1);
  }
  spec.shape = merged_shape(*cfg.method, shapes, spec.base, c["is_embed"].get<bool>(), spec.name, spec.labels);
  for (const auto& m : order) spec.inputs.push_back(tensor_rows(file.require_tensor(c["inputs"][m]), spec.shape, cfg.dtype));
  spec.global = r.global;
  spec.per_model = r.per_input;
  spec.masks = masks;
  *shape = spec.shape;
  auto merger = make_tensor_merger(spec);
  return merge_all(*merger, spec.shape);
}

void compare(const json& c, std::vector<float> got, const std::vector<float>& want, bool bf16) {
  REQUIRE(got.size() == want.size());
  double atol = c["tolerance"]["atol"], rtol = c["tolerance"]["rtol"], max_abs = 0, scale = 0;
  if (bf16) {
    // mergekit computes in bf16 (weights and every intermediate rounded), moeforge in float32 with
    // one rounding: they agree within one bf16 ulp of the tensor's largest magnitude.
    for (size_t i = 0; i < got.size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(bf16_to_f32(f32_to_bf16(got[i]))) - want[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    }
    CHECK(max_abs <= 0x1p-7 * scale);
    auto& r = report()[c["method"].get<std::string>() + " (bf16)"];
    ++r.cases;
    r.max_abs = std::max(r.max_abs, max_abs);
    r.max_rel = std::max(r.max_rel, max_abs / scale);
    return;
  }
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(got[i]) && std::isnan(want[i])) d = 0;
    if (std::isnan(d) || std::isinf(want[i])) d = got[i] == want[i] ? 0 : INFINITY;
    max_abs = std::max(max_abs, d);
    if (std::isfinite(want[i])) scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    if (!(d <= atol + rtol * std::fabs(want[i]))) ++bad;
  }
  double rel = scale > 0 ? max_abs / scale : max_abs;
  CHECK(bad == 0);
  bool ill_conditioned = atol >= 1e-3;
  if (!bf16 && !ill_conditioned) CHECK(rel <= 1e-5);
  auto& r = report()[c["method"].get<std::string>() + (ill_conditioned ? " (ill-conditioned)" : "")];
  ++r.cases;
  r.max_rel = std::max(r.max_rel, rel);
  r.max_abs = std::max(r.max_abs, max_abs);
}

}  // namespace

TEST_CASE("mergekit reference: every method case") {
  int compared = 0, refused = 0;
  for (const auto& c : cases()["method_cases"]) {
    const std::string name = c["name"];
    const std::string key = name;  // CAPTURE cannot take a structured binding in clang
    CAPTURE(key);
    Checkpoint file(reference(c["file"]));
    auto masks = std::make_shared<Recorded>();
    MergeConfig cfg = [&] {
      try {
        return parse_merge_config(c["config"], name, by_name());
      } catch (const Error&) {
        return MergeConfig{};
      }
    }();
    if (c.contains("rng")) {
      for (const auto& call : c["rng"]["calls_in_order"]) {
        const SliceDef& s = cfg.slices[0];
        for (size_t k = 0; k < s.sources.size(); ++k)
          if (cfg.models[static_cast<size_t>(s.sources[k].model)] == call["model"]) masks->masks[k] = read_f32(file.require_tensor(call["mask"]));
      }
    }
    Shape shape;
    if (name == "ta_nonembed_mismatch_skipped") {
      CHECK_THROWS_AS(run_case(c, file, masks, &shape), MismatchError);
      continue;
    }
    if (kDeviations.count(name)) continue;
    if (c.contains("expected_error") && !c["expected_error"].is_null()) {
      CHECK_THROWS_AS(run_case(c, file, masks, &shape), Error);
      ++refused;
      continue;
    }
    std::vector<float> got = run_case(c, file, masks, &shape);
    ++compared;
    compare(c, got, read_f32(file.require_tensor(c["expected"])), c["expected_dtype"] == "bfloat16");
    if (!c.contains("rng")) continue;
    // DELLA: the probabilities moeforge computed equal the ones mergekit passed to torch.bernoulli.
    for (const auto& call : c["rng"]["calls_in_order"]) {
      if (!call.contains("probs")) continue;
      std::vector<float> want = read_f32(file.require_tensor(call["probs"]));
      for (const auto& [k, seen] : masks->probs)
        if (cfg.models[static_cast<size_t>(cfg.slices[0].sources[k].model)] == call["model"]) {
          REQUIRE(seen.size() == want.size());
          for (size_t i = 0; i < want.size(); ++i) CHECK(seen[i] == doctest::Approx(want[i]).epsilon(1e-6));
        }
    }
  }
  CHECK(compared == 107);  // every output case of the 122 (ram methods trimmed), none skipped unnoticed
  CHECK(refused == 13);
  if (std::getenv("MOEFORGE_MERGE_REPORT"))
    for (const auto& [method, r] : report())
      std::printf("%-18s %3d cases  max |Δ| %.3g  max |Δ|/max|expected| %.3g\n", method.c_str(), r.cases, r.max_abs, r.max_rel);
}

TEST_CASE("mergekit reference: the method table equals mergekit's registry") {
  json reg = read_json_file(reference("registry.json"))["methods"];
  for (const auto& m : merge_methods()) {
    CAPTURE(m.name);
    REQUIRE(reg.contains(m.name));
    const json& r = reg[m.name];
    std::vector<std::string> global, per_model;
    for (const auto& p : m.params) (p.per_model ? per_model : global).push_back(p.name);
    auto names = [](const json& list) {
      std::vector<std::string> out;
      for (const auto& p : list) out.push_back(p["name"]);
      return out;
    };
    std::vector<std::string> want_global = names(r["global_parameters"]), want_model = names(r["per_model_parameters"]);
    std::sort(global.begin(), global.end());
    std::sort(per_model.begin(), per_model.end());
    std::sort(want_global.begin(), want_global.end());
    std::sort(want_model.begin(), want_model.end());
    CHECK(global == want_global);
    CHECK(per_model == want_model);
    for (const auto& list : {r["global_parameters"], r["per_model_parameters"]})
      for (const auto& p : list) {
        const MergeParam* mine = find_param(m, p["name"].get<std::string>());
        REQUIRE(mine);
        CAPTURE(mine->name);
        CHECK(mine->required == p["required"].get<bool>());
        if (p["default"].is_null()) CHECK_FALSE(mine->default_value);
        else CHECK(mine->default_value.value_or(-999) == param_value(p["default"]));
      }
    if (r.contains("sparsification_method")) {
      static const std::map<std::string, Sparsify> kinds = {{"magnitude", Sparsify::kMagnitude}, {"random", Sparsify::kRandom},
                                                            {"magnitude_outliers", Sparsify::kMagnitudeOutliers}, {"della_magprune", Sparsify::kDella}};
      CHECK(m.gta);
      CHECK(m.sparsify == (r["sparsification_method"].is_null() ? Sparsify::kNone : kinds.at(r["sparsification_method"])));
      CHECK(m.sign_consensus == !r["consensus_method"].is_null());
    }
  }
}
