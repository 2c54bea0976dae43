// moeforge merge OUT --method ties --base B --model A --model C --weight 1,0.5 --density 0.5, or
// moeforge merge OUT --config mergekit.yml: dense merging with mergekit's semantics. The options
// become a mergekit-yaml config (per-model options take one value for every model or one per
// --model), so both forms run through the same reader, planner and writer; the option table is
// built from the method table (merge/merge_registry.hpp) and is the recipe `merge` step's table.
#include <cstdio>
#include <memory>
#include <set>

#include "cli/checkpoint_source.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "merge/dense_merge.hpp"
#include "model/inspection.hpp"
#include "model/model_config.hpp"
#include "recipes/recipe.hpp"

namespace moeforge {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string kebab(std::string s) {
  for (auto& c : s)
    if (c == '_') c = '-';
  return s;
}

// One option per method parameter (the union over all methods).
ParamTable method_params() {
  ParamTable out;
  std::set<std::string> seen;
  for (const auto& m : merge_methods())
    for (const auto& p : m.params) {
      if (!seen.insert(p.name).second) continue;
      ParamSpec s{.name = kebab(p.name), .help = p.help};
      if (p.per_model) {
        s.type = ParamType::kFloatList;
        s.help += " (one value for every --model, or one per --model)";
      } else if (p.boolean) {
        s.type = ParamType::kChoice;
        s.choices = {"true", "false"};
        s.help += " (default: the method's)";
      } else {
        s.type = ParamType::kFloat;
        if (p.default_value) s.help += " (default: the method's)";
      }
      out.push_back(s);
    }
  return out;
}

// The command-line options as the mergekit-yaml config they stand for.
json config_from_options(const ParamValues& p) {
  if (!p.has("method")) throw UsageError("--method: required (or --config FILE); methods: " + merge_method_names());
  std::vector<std::string> models = p.strings("model");
  if (models.empty()) throw UsageError("--model: give the models to merge (repeat --model)");
  json body = {{"merge_method", p.str("method")}, {"models", json::array()}, {"parameters", json::object()}};
  for (const auto& m : models) body["models"].push_back({{"model", require_local_model(m, fs::current_path(), "--model")}});
  if (p.has("base")) body["base_model"] = require_local_model(p.str("base"), fs::current_path(), "--base");
  const MergeMethodInfo& method = *find_merge_method(p.str("method"));
  for (const auto& spec : method_params()) {
    if (!p.has(spec.name)) continue;
    std::string key = spec.name;
    for (auto& c : key)
      if (c == '-') c = '_';
    if (!find_param(method, key)) throw UsageError("--" + spec.name + ": not a parameter of " + method.name);
    if (spec.type == ParamType::kChoice) {
      body["parameters"][key] = p.str(spec.name) == "true";
    } else if (spec.type == ParamType::kFloat) {
      body["parameters"][key] = p.number(spec.name);
    } else {
      std::vector<double> v = p.numbers(spec.name);
      if (v.size() == 1) body["parameters"][key] = v[0];
      else if (v.size() == models.size())
        for (size_t i = 0; i < v.size(); ++i) body["models"][i]["parameters"][key] = v[i];
      else
        throw UsageError("--" + spec.name + ": " + std::to_string(v.size()) + " values for " + std::to_string(models.size()) +
                         " --model; give one value for all or one per --model");
    }
  }
  return body;
}

}  // namespace

Verb merge_verb() {
  using T = ParamType;
  Verb v;
  v.name = "merge";
  v.description = "merge dense (or MoE) models tensor by tensor with mergekit's methods (ties, dare, slerp ...), or run a mergekit-yaml config";
  v.params = with(with(with({
      {.name = "output", .type = T::kPath, .help = "directory to write", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "config", .type = T::kPath, .help = "a mergekit-yaml config (instead of --method, --model, --base and the method options)"},
      {.name = "method", .type = T::kChoice, .help = "merge method", .choices = [] {
         std::vector<std::string> names;
         for (const auto& m : merge_methods()) names.push_back(m.name);
         return names;
       }()},
      {.name = "model", .type = T::kPathList, .help = "a model to merge (repeat; order = input order)"},
      {.name = "base", .type = T::kPath, .help = "base_model: the reference for task vectors / interpolation (merged last when not a --model)"},
      {.name = "seed", .type = T::kInt, .help = "seed of DARE/DELLA's random masks (default 0, or the config's seed:)", .min = 0.0},
  }, method_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    json body;
    MergeConfig config;
    if (p.has("config")) {
      for (const char* o : {"method", "model", "base"})
        if (p.has(o)) throw UsageError("--" + std::string(o) + ": --config gives the whole merge; leave out --method, --model, --base");
      for (const auto& s : method_params())
        if (p.has(s.name)) throw UsageError("--" + s.name + ": --config gives the whole merge; set parameters in it");
      fs::path file = p.str("config");
      body = yaml_to_json(read_text_file(file), file.string());
      config = parse_merge_config(body, file.string(), local_model_resolver(fs::absolute(file).parent_path(), file.string()));
    } else {
      body = config_from_options(p);
      config = parse_merge_config(body, kCommandLine, local_model_resolver(fs::current_path(), kCommandLine));
    }
    for (const auto& w : config.warnings) warn(w);
    std::vector<std::unique_ptr<Checkpoint>> owned;
    std::vector<const Checkpoint*> models;
    for (const auto& m : config.models) {
      owned.push_back(open_checkpoint(ctx, m));
      models.push_back(owned.back().get());
      // Families moeforge knows are checked against their config; others merge by tensor names.
      const Checkpoint& c = *owned.back();
      if (c.has_config() && family_for_config(c.config()))
        require_consistent_structure(c, resolve_config(c.config(), c.config_path().string()));
    }
    DenseMergeOptions o;
    o.dtype = requested_dtype(p);
    o.seed = p.has("seed") ? static_cast<uint64_t>(p.integer("seed")) : config.seed.value_or(0);
    Plan plan = plan_dense_merge(config, models, o);
    for (const auto& n : plan.notes)
      if (n.rfind("warning: ", 0) == 0) warn(n.substr(9));
    plan.provenance = provenance(v, p);
    plan.provenance["inputs"] = p.has("config") ? json::array({p.str("config")}) : json::array();
    for (const auto& m : config.models) plan.provenance["inputs"].push_back(m);
    plan.provenance["mergekit_config"] = body;
    plan.provenance["seed"] = o.seed;
    return write_output(plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
