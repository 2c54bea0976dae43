#include "merge/merge_config.hpp"

#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::set<std::string> kTopKeys = {"merge_method", "models",   "slices",         "modules",   "base_model", "dtype",
                                        "out_dtype",    "tokenizer_source", "tokenizer", "chat_template", "parameters",
                                        "seed",         "output",   "description"};

struct Reader {
  MergeConfig& c;
  const ModelResolver& resolve;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const { throw UsageError(c.context + ": " + key + ": " + what); }
  void warn(const std::string& key, const std::string& what) const { c.warnings.push_back(c.context + ": " + key + ": " + what); }

  int model(const json& v, const std::string& where) {
    if (v.is_object()) fail(where, "write the model as a local path (LoRA and revision mappings are not supported)");
    if (!v.is_string() || v.get<std::string>().empty()) fail(where, "expected a model path, found " + v.dump());
    std::string id = resolve(v.get<std::string>(), where);
    for (size_t i = 0; i < c.models.size(); ++i)
      if (c.models[i] == id) return static_cast<int>(i);
    c.models.push_back(id);
    return static_cast<int>(c.models.size() - 1);
  }

  std::optional<DType> dtype(const json& body, const std::string& key) {
    if (!body.contains(key) || body[key].is_null()) return std::nullopt;
    if (!body[key].is_string()) fail(key, "expected bfloat16, float16 or float32, found " + body[key].dump());
    std::string d = body[key];
    if (d.rfind("torch.", 0) == 0) d = d.substr(6);
    static const std::map<std::string, DType> kNames = {{"bfloat16", DType::kBF16}, {"float16", DType::kF16}, {"float32", DType::kF32},
                                                        {"bf16", DType::kBF16},     {"f16", DType::kF16},     {"f32", DType::kF32}};
    if (d == "int64") fail(key, "int64 is not a float type moeforge merges in; use bfloat16, float16 or float32");
    auto it = kNames.find(d);
    if (it == kNames.end()) fail(key, "\"" + body[key].get<std::string>() + "\": expected bfloat16, float16 or float32");
    return it->second;
  }

  // Parameters the method does not take, or given where mergekit never looks, are ignored by
  // mergekit: say so.
  SettingMap params(const json& e, const std::string& where, bool per_model_level) {
    SettingMap out = parse_settings(e.contains("parameters") ? e["parameters"] : json(), c.context, where + "parameters");
    for (const auto& [name, setting] : out) {
      const MergeParam* p = find_param(*c.method, name);
      if (!p) {
        std::vector<std::string> names;
        for (const auto& q : c.method->params) names.push_back(q.name);
        warn(where + "parameters." + name, "not a parameter of " + c.method->name + " (" + (names.empty() ? "it takes none" : "it takes " + join(names, ", ")) +
                                               "); ignored, as mergekit does");
      } else if (per_model_level && !p->per_model) {
        warn(where + "parameters." + name, name + " is a global parameter of " + c.method->name +
                                               "; mergekit does not read it per model, so it is ignored here (set it under parameters: or the slice's parameters:)");
      }
    }
    return out;
  }

  SourceDef source(const json& e, const std::string& where, bool with_range) {
    if (!e.is_object()) fail(where, "expected a mapping with model" + std::string(with_range ? " and layer_range" : "") + ", found " + e.dump());
    for (const auto& [key, v] : e.items())
      if (key != "model" && key != "parameters" && (key != "layer_range" || !with_range)) warn(where + "." + key, "unknown key; ignored, as mergekit does");
    if (!e.contains("model")) fail(where + ".model", "missing");
    SourceDef s;
    s.where = where;
    s.model = model(e["model"], where + ".model");
    s.params = params(e, where + ".", true);
    if (!with_range) return s;
    const json& r = e.contains("layer_range") ? e["layer_range"] : json();
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_integer() || !r[1].is_number_integer())
      fail(where + ".layer_range", "expected [start, end] (integers, end exclusive), found " + r.dump());
    int64_t a = r[0], b = r[1];
    if (a < 0 || b <= a) fail(where + ".layer_range", "expected 0 <= start < end, found " + r.dump());
    s.layer_range = std::make_pair(a, b);
    return s;
  }

  void models_form(const json& list) {
    if (!list.is_array() || list.empty()) fail("models", "expected a non-empty list of {model, parameters}");
    SliceDef slice;
    slice.where = "models";
    std::set<int> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      SourceDef s = source(list[i], "models[" + std::to_string(i) + "]", false);
      if (!seen.insert(s.model).second) fail("models[" + std::to_string(i) + "].model", "\"" + c.models[static_cast<size_t>(s.model)] + "\" is listed twice");
      slice.sources.push_back(std::move(s));
    }
    // normalize_config: a base_model not listed is merged as the last input, without parameters.
    if (c.base_model && !seen.count(*c.base_model)) slice.sources.push_back({.model = *c.base_model, .where = "base_model"});
    c.slices.push_back(std::move(slice));
  }

  void slices_form(const json& list) {
    if (!list.is_array() || list.empty()) fail("slices", "expected a non-empty list of {sources: [...]}");
    c.uses_slices = true;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string where = "slices[" + std::to_string(i) + "]";
      const json& e = list[i];
      if (!e.is_object()) fail(where, "expected a mapping with sources");
      for (const auto& [key, v] : e.items())
        if (key != "sources" && key != "parameters" && key != "base_model" && key != "residual_weight")
          warn(where + "." + key, "unknown key; ignored, as mergekit does");
      if (e.contains("residual_weight")) warn(where + ".residual_weight", "parsed but never used by mergekit; ignored");
      if (!e.contains("sources") || !e["sources"].is_array() || e["sources"].empty()) fail(where + ".sources", "expected a non-empty list of sources");
      SliceDef s;
      s.where = where;
      for (size_t k = 0; k < e["sources"].size(); ++k)
        s.sources.push_back(source(e["sources"][k], where + ".sources[" + std::to_string(k) + "]", true));
      const auto& first = *s.sources[0].layer_range;
      for (const auto& src : s.sources)
        if (src.layer_range->second - src.layer_range->first != first.second - first.first)
          fail(src.where + ".layer_range", "all sources of a slice must have the same number of layers (" +
                                               std::to_string(first.second - first.first) + " in the first)");
      if (e.contains("base_model") && !e["base_model"].is_null()) s.base_model = model(e["base_model"], where + ".base_model");
      s.params = params(e, where + ".", false);
      c.slices.push_back(std::move(s));
    }
  }

  void tokenizer(const json& body) {
    json source;
    if (body.contains("tokenizer") && !body["tokenizer"].is_null()) {
      const json& t = body["tokenizer"];
      if (body.contains("tokenizer_source") && !body["tokenizer_source"].is_null()) fail("tokenizer", "give tokenizer_source or tokenizer, not both");
      if (!t.is_object()) fail("tokenizer", "expected a mapping with source");
      if (t.contains("tokens") && !t["tokens"].is_null()) fail("tokenizer.tokens", "token sources (embedding permutation) are not supported by moeforge");
      if (t.contains("pad_to_multiple_of") && !t["pad_to_multiple_of"].is_null())
        fail("tokenizer.pad_to_multiple_of", "vocabulary padding is not supported by moeforge");
      source = t.contains("source") ? t["source"] : json();
    } else if (body.contains("tokenizer_source")) {
      source = body["tokenizer_source"];
    }
    if (source.is_null()) return;
    const std::string key = body.contains("tokenizer") ? "tokenizer.source" : "tokenizer_source";
    if (!source.is_string()) fail(key, "expected base, union or a model path, found " + source.dump());
    if (source == "union")
      fail(key, "union (a vocabulary built from every model, embeddings permuted into it) is not supported yet; use base or a model whose tokenizer all models share");
    if (source == "base") {
      if (!c.base_model) fail(key, "base needs base_model");
      c.tokenizer = TokenizerSource::kBase;
      c.tokenizer_model = *c.base_model;
      return;
    }
    c.tokenizer = TokenizerSource::kModel;
    c.tokenizer_model = model(source, key);
  }

  void check_bases() {
    if (c.method->base == BaseRule::kAsInput) return;
    for (const auto& s : c.slices) {
      auto base = c.base_of(s);
      if (!base) {
        if (c.method->base == BaseRule::kRequired)
          fail("base_model", c.method->name + " needs base_model (the model the others are merged against); " +
                                 (c.context == kCommandLine ? "give --base PATH" : "add base_model: PATH"));
        continue;
      }
      bool listed = false;
      for (const auto& src : s.sources) listed = listed || src.model == *base;
      if (!listed) fail(s.where, "base_model \"" + c.models[static_cast<size_t>(*base)] + "\" is not among the slice's sources; add it as a source");
    }
  }
};

std::string hf_hint(const std::string& reference) {
  if (reference.find('+') != std::string::npos) return "; merging LoRA adapters (model+lora) is not supported";
  return "; moeforge reads local checkpoints only: download the model first (e.g. huggingface-cli download " + reference +
         " --local-dir DIR) and give its directory";
}

}  // namespace

std::string require_local_model(const std::string& reference, const fs::path& dir, const std::string& what) {
  fs::path p = fs::path(reference).is_absolute() ? fs::path(reference) : dir / reference;
  std::error_code ec;
  if (!fs::exists(p, ec))
    throw UsageError(what + ": \"" + reference + "\" is not a local model directory (" + p.lexically_normal().string() + ")" + hf_hint(reference));
  return fs::weakly_canonical(p).string();
}

ModelResolver local_model_resolver(const fs::path& dir, const std::string& context) {
  return [dir, context](const std::string& reference, const std::string& where) { return require_local_model(reference, dir, context + ": " + where); };
}

int MergeConfig::donor() const {
  if (base_model) return *base_model;
  return slices.front().sources.front().model;
}

MergeConfig parse_merge_config(const json& body, const std::string& context, const ModelResolver& resolve) {
  MergeConfig c;
  c.context = context;
  Reader r{c, resolve};
  if (!body.is_object()) r.fail("(top level)", "expected a mergekit-yaml mapping with merge_method");
  for (const auto& [key, v] : body.items())
    if (!kTopKeys.count(key)) r.warn(key, "not a mergekit-yaml key; ignored, as mergekit does");
  if (!body.contains("merge_method") || !body["merge_method"].is_string()) r.fail("merge_method", "missing (one of " + merge_method_names() + ")");
  std::string method = body["merge_method"];
  c.method = find_merge_method(method);
  if (!c.method) r.fail("merge_method", "unknown method \"" + method + "\" (known: " + merge_method_names() + ")");
  if (body.contains("modules") && !body["modules"].is_null()) r.fail("modules", "multi-module configs are not supported; use models: or slices:");
  if (body.contains("chat_template") && !body["chat_template"].is_null())
    r.fail("chat_template", "setting a chat template is not supported; remove it (the donor model's tokenizer files are copied)");
  if (body.contains("base_model") && !body["base_model"].is_null()) c.base_model = r.model(body["base_model"], "base_model");
  bool has_models = body.contains("models") && !body["models"].is_null(), has_slices = body.contains("slices") && !body["slices"].is_null();
  if (has_models == has_slices) r.fail(has_models ? "slices" : "models", "give exactly one of models: and slices:");
  if (has_models) r.models_form(body["models"]);
  else r.slices_form(body["slices"]);
  c.params = r.params(body, "", false);
  c.dtype = r.dtype(body, "dtype");
  c.out_dtype = r.dtype(body, "out_dtype");
  r.tokenizer(body);
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_unsigned()) r.fail("seed", "must be an integer >= 0, found " + body["seed"].dump());
    c.seed = body["seed"].get<uint64_t>();
  }
  r.check_bases();
  return c;
}

std::optional<double> lookup_parameter(const MergeConfig& c, const SliceDef* slice, const std::string& name, std::optional<int> model,
                                       const std::string& tensor, double t) {
  if (slice) {
    if (model)
      for (const auto& s : slice->sources) {
        auto it = s.params.find(name);
        if (s.model != *model || it == s.params.end()) continue;
        if (auto v = evaluate_setting(it->second, tensor, t)) return v;
      }
    if (auto it = slice->params.find(name); it != slice->params.end())
      if (auto v = evaluate_setting(it->second, tensor, t)) return v;
  }
  if (auto it = c.params.find(name); it != c.params.end())
    if (auto v = evaluate_setting(it->second, tensor, t)) return v;
  return std::nullopt;
}

ResolvedParameters resolve_parameters(const MergeConfig& c, const SliceDef& slice, const std::string& out_name,
                                      const std::vector<std::string>& in_names, double t) {
  ResolvedParameters r;
  r.per_input.resize(slice.sources.size());
  const auto base = c.base_of(slice);
  for (const auto& p : c.method->params) {
    if (!p.per_model) {
      auto v = lookup_parameter(c, &slice, p.name, std::nullopt, out_name, t);
      if (!v && p.required)
        throw UsageError(c.context + ": parameters." + p.name + ": required by " + c.method->name + " (no value for tensor '" + out_name + "')");
      if (v || p.default_value) r.global[p.name] = v ? *v : *p.default_value;
      continue;
    }
    for (size_t k = 0; k < slice.sources.size(); ++k) {
      const SourceDef& s = slice.sources[k];
      auto v = lookup_parameter(c, &slice, p.name, s.model, in_names[k], t);
      bool is_base = base && *base == s.model && c.method->base != BaseRule::kAsInput;
      if (!v && p.required && !is_base)
        throw UsageError(c.context + ": " + s.where + ": " + p.name + " is required by " + c.method->name + " for \"" +
                         c.models[static_cast<size_t>(s.model)] + "\" (no value for tensor '" + in_names[k] + "'); set " +
                         (s.where == "base_model" ? "it for base_model by listing it under models:" : s.where + ".parameters." + p.name) +
                         " or parameters." + p.name);
      if (v || p.default_value) r.per_input[k][p.name] = v ? *v : *p.default_value;
    }
  }
  return r;
}

std::vector<std::string> unmatched_filters(const MergeConfig& c, const std::vector<std::string>& tensor_names) {
  std::vector<std::string> out;
  auto check = [&](const SettingMap& m) {
    for (const auto& [name, s] : m)
      for (const auto& cond : s.conditions) {
        if (!cond.filter || *cond.filter == "*") continue;
        bool any = false;
        for (const auto& t : tensor_names) any = any || t.find(*cond.filter) != std::string::npos;
        if (!any) out.push_back(c.context + ": " + cond.where + ".filter: \"" + *cond.filter + "\" matches no tensor name");
      }
  };
  check(c.params);
  for (const auto& s : c.slices) {
    check(s.params);
    for (const auto& src : s.sources) check(src.params);
  }
  return out;
}

}  // namespace moeforge
