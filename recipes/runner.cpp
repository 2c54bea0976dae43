#include "recipes/runner.hpp"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/log.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The option of each verb that takes the previous step's output ("" : it takes none).
const std::map<std::string, std::string> kChainInput = {
    {"compose", ""}, {"upcycle", "model"}, {"prune", "model"}, {"merge-experts", "model"}, {"convert", "input"}};
// Options `moeforge run` decides for every step.
const char* kRunnerOptions[] = {"output", "dry-run", "force", "threads", "json", "quiet"};

std::string kebab(std::string s) {
  for (auto& c : s)
    if (c == '_') c = '-';
  return s;
}

struct PreparedStep {
  const Verb* verb;
  std::string where, output;
  json options;  // validated, typed, paths absolute
};

// Paths in a recipe are relative to the recipe's folder.
json resolve_paths(const json& options, const Verb& verb, const fs::path& dir) {
  json out = json::object();
  for (const auto& [key, value] : options.items()) out[kebab(key)] = value;
  auto absolute = [&](const json& v) { return v.is_string() && fs::path(v.get<std::string>()).is_relative() ? json((dir / v.get<std::string>()).lexically_normal().string()) : v; };
  for (const auto& p : verb.params) {
    if (!out.contains(p.name)) continue;
    if (p.type == ParamType::kPath) out[p.name] = absolute(out[p.name]);
    if (p.type == ParamType::kPathList && out[p.name].is_array())
      for (auto& v : out[p.name]) v = absolute(v);
  }
  return out;
}

void check_inputs_exist(const PreparedStep& s, const std::set<std::string>& produced, const fs::path& recipe) {
  for (const auto& p : s.verb->params) {
    if (!p.affects_output || !s.options.contains(p.name)) continue;  // outputs (output, report, plot) need not exist
    if (p.type != ParamType::kPath && p.type != ParamType::kPathList) continue;
    json list = p.type == ParamType::kPath ? json::array({s.options[p.name]}) : s.options[p.name];
    for (const auto& v : list) {
      std::string path = v;
      if (!produced.count(path) && !fs::exists(path))
        throw UsageError(recipe.string() + ": " + s.where + "." + p.name + ": " + path + " does not exist");
    }
  }
}

std::vector<PreparedStep> prepare(const Recipe& r, const std::vector<RecipeStep>& steps, const std::vector<Verb>& verbs,
                                  const std::string& out, const fs::path& work, const RunOptions& o) {
  const fs::path dir = fs::absolute(r.file).parent_path();
  std::vector<PreparedStep> prepared;
  std::set<std::string> produced;
  for (size_t i = 0; i < steps.size(); ++i) {
    const RecipeStep& st = steps[i];
    auto chain = kChainInput.find(st.verb);
    const Verb* verb = nullptr;
    for (const auto& v : verbs)
      if (v.name == st.verb) verb = &v;
    if (chain == kChainInput.end() || verb == nullptr)
      throw UsageError(r.file.string() + ": " + st.where + ": unknown step (steps are compose, upcycle, prune, merge-experts, convert)");
    for (const char* k : kRunnerOptions)
      if (st.options.contains(k) || st.options.contains(std::string(k) == "dry-run" ? "dry_run" : k))
        throw UsageError(r.file.string() + ": " + st.where + "." + k + ": set by `moeforge run` for every step, not in a recipe");
    json options = resolve_paths(st.options, *verb, dir);
    if (!chain->second.empty() && !options.contains(chain->second)) {
      if (prepared.empty()) throw UsageError(r.file.string() + ": " + st.where + "." + chain->second + ": the first step needs an input");
      options[chain->second] = prepared.back().output;
    }
    std::string output = i + 1 == steps.size() ? out : (work / ("step-" + std::to_string(i + 1) + "-" + st.verb)).string();
    options["output"] = output;
    options["threads"] = o.threads;
    options["quiet"] = o.quiet;
    options["force"] = i + 1 == steps.size() ? o.force : true;
    ParamValues values = validate_params(verb->params, options, r.file.string() + ": " + st.where);
    PreparedStep p{verb, st.where, output, values.all()};
    check_inputs_exist(p, produced, r.file);
    produced.insert(output);
    prepared.push_back(std::move(p));
  }
  return prepared;
}

json resolved_recipe(const Recipe& r, const std::vector<PreparedStep>& steps, const std::string& out) {
  json list = json::array();
  for (const auto& s : steps) list.push_back({{s.verb->name, ParamValues(s.options).output_relevant(s.verb->params)}});
  json j = {{"recipe", fs::absolute(r.file).string()}, {"kind", r.mergekit ? "mergekit-moe" : "moeforge"}, {"output", out}, {"steps", list}};
  if (r.mergekit) j["mergekit_config"] = r.body;
  return j;
}

}  // namespace

nlohmann::ordered_json run_recipe(const Recipe& r, const std::vector<Verb>& verbs, const RunOptions& o) {
  std::string out = !o.out.empty() ? o.out : r.output.empty() ? std::string() : (fs::absolute(r.file).parent_path() / r.output).string();
  if (out.empty()) throw UsageError(r.file.string() + ": output: missing (or pass --out DIR)");
  out = fs::absolute(out).lexically_normal().string();
  // Intermediates and mergekit prompt files: beside the output, or in /tmp for a dry run.
  fs::path work = o.dry_run ? fs::temp_directory_path() / ("moeforge-dry-run-" + std::to_string(::getpid())) : fs::path(out + ".moeforge-steps");
  bool keep = r.keep_intermediate && !o.dry_run;
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::create_directories(work);
  auto cleanup = [&] {
    if (!keep) fs::remove_all(work, ec);
  };
  nlohmann::ordered_json report;
  try {
    std::vector<RecipeStep> steps = r.steps;
    if (r.mergekit) {
      MergekitTranslation t = translate_mergekit(r, work, o.tokenize);
      for (const auto& w : t.warnings) warn(w);
      steps = {t.step};
    }
    std::vector<PreparedStep> prepared = prepare(r, steps, verbs, out, work, o);
    json resolved = resolved_recipe(r, prepared, out);
    RunContext ctx;
    std::vector<json> plans(prepared.size());
    report["recipe"] = r.file.string();
    report["output"] = out;
    report["steps"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < prepared.size(); ++i) {
      PreparedStep& s = prepared[i];
      json options = s.options;
      options["dry-run"] = o.dry_run;
      options["json"] = false;
      bool last = i + 1 == prepared.size();
      ctx.recipe = last ? resolved : json();
      ctx.recipe_yaml = last ? json_to_yaml(resolved) : "";
      ctx.plan_out = &plans[i];
      if (!o.json) std::printf("== step %zu/%zu: %s → %s\n", i + 1, prepared.size(), s.verb->name.c_str(), s.output.c_str());
      if (o.json) options["quiet"] = true;
      int rc = 0;
      try {
        rc = s.verb->run(ParamValues(options), ctx);
      } catch (const UsageError& e) {
        // A dry run cannot plan a step whose planning reads the weights an earlier step would write.
        if (!o.dry_run || std::string(e.what()).find("has no data yet") == std::string::npos) throw;
        std::string why = "needs the weights of step " + std::to_string(i) + "'s output (" + e.what() + "); its options are valid";
        if (!o.json) std::printf("not planned: %s\n", why.c_str());
        report["steps"].push_back({{"verb", s.verb->name}, {"output", s.output}, {"options", s.options}, {"planned", false}, {"why", why}});
        for (size_t j = i + 1; j < prepared.size(); ++j)
          report["steps"].push_back({{"verb", prepared[j].verb->name}, {"output", prepared[j].output}, {"options", prepared[j].options}, {"planned", false}});
        break;
      }
      if (rc != 0) throw Error(static_cast<ExitCode>(rc), r.file.string() + ": " + s.where + " failed");
      if (o.dry_run) ctx.planned[s.output] = plans[i];
      report["steps"].push_back({{"verb", s.verb->name}, {"output", s.output}, {"options", s.options}});
    }
  } catch (...) {
    fs::remove_all(work, ec);
    throw;
  }
  cleanup();
  if (keep) report["intermediate"] = work.string();
  return report;
}

}  // namespace moeforge
