#include "recipes/runner.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "recipes/mergekit_yaml.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The option of each verb that takes the previous step's output ("" : it takes none).
const std::map<std::string, std::string> kChainInput = {
    {"compose", ""}, {"upcycle", "model"}, {"prune", "model"}, {"merge-experts", "model"}, {"convert", "input"}, {"merge", ""}};
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

// "@stepN": the output of earlier step N (counted from 1); nullopt for any other value.
std::optional<std::string> step_reference(const json& v, const std::vector<PreparedStep>& earlier, const std::string& where) {
  if (!v.is_string() || v.get<std::string>().rfind("@step", 0) != 0) return std::nullopt;
  const std::string s = v.get<std::string>();
  size_t n = 0;
  bool digits = s.size() > 5 && s.find_first_not_of("0123456789", 5) == std::string::npos;
  if (digits) n = std::stoul(s.substr(5, 9));
  if (!digits || n == 0 || n > earlier.size())
    throw UsageError(where + ": \"" + s + "\" names no earlier step (steps before this one: " + std::to_string(earlier.size()) + ")");
  return earlier[n - 1].output;
}

// Paths in a recipe are relative to the recipe's folder; "@stepN" names an earlier step's output.
json resolve_paths(const json& options, const Verb& verb, const fs::path& dir, const std::vector<PreparedStep>& earlier, const std::string& where) {
  json out = json::object();
  for (const auto& [key, value] : options.items()) out[kebab(key)] = value;
  auto absolute = [&](const json& v) {
    if (auto ref = step_reference(v, earlier, where)) return json(*ref);
    return v.is_string() && fs::path(v.get<std::string>()).is_relative() ? json((dir / v.get<std::string>()).lexically_normal().string()) : v;
  };
  for (const auto& p : verb.params) {
    if (!out.contains(p.name)) continue;
    if (p.type == ParamType::kPath) out[p.name] = absolute(out[p.name]);
    if (p.type == ParamType::kPathList && out[p.name].is_array())
      for (auto& v : out[p.name]) v = absolute(v);
  }
  return out;
}

// Files the recipe generates in its work folder (mergekit prompt ids) exist only once it runs.
void check_inputs_exist(const PreparedStep& s, const std::set<std::string>& produced, const fs::path& recipe, const fs::path& work) {
  for (const auto& p : s.verb->params) {
    if (!p.affects_output || !s.options.contains(p.name)) continue;  // outputs (output, report, plot) need not exist
    if (p.type != ParamType::kPath && p.type != ParamType::kPathList) continue;
    json list = p.type == ParamType::kPath ? json::array({s.options[p.name]}) : s.options[p.name];
    for (const auto& v : list) {
      std::string path = v;
      if (!produced.count(path) && path.rfind(work.string() + "/", 0) != 0 && !fs::exists(path))
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
    if (chain == kChainInput.end() || verb == nullptr) {
      std::vector<std::string> names;
      for (const auto& [name, input] : kChainInput) names.push_back(name);
      throw UsageError(r.file.string() + ": " + st.where + ": unknown step (steps are " + join(names, ", ") + ")");
    }
    for (const char* k : kRunnerOptions)
      if (st.options.contains(k) || st.options.contains(std::string(k) == "dry-run" ? "dry_run" : k))
        throw UsageError(r.file.string() + ": " + st.where + "." + k + ": set by `moeforge run` for every step, not in a recipe");
    json options = resolve_paths(st.options, *verb, dir, prepared, r.file.string() + ": " + st.where);
    if (!chain->second.empty() && !options.contains(chain->second)) {
      if (prepared.empty()) throw UsageError(r.file.string() + ": " + st.where + "." + chain->second + ": the first step needs an input");
      options[chain->second] = prepared.back().output;
    }
    std::string output = i + 1 == steps.size() ? out : (work / ("step-" + std::to_string(i + 1) + "-" + st.verb)).string();
    options["output"] = output;
    options["threads"] = o.threads;
    options["quiet"] = o.quiet;
    options["force"] = i + 1 == steps.size() && o.force;  // intermediates are always new
    ParamValues values = validate_params(verb->params, options, r.file.string() + ": " + st.where);
    PreparedStep p{verb, st.where, output, values.all()};
    check_inputs_exist(p, produced, r.file, work);
    produced.insert(output);
    prepared.push_back(std::move(p));
  }
  return prepared;
}

json resolved_recipe(const Recipe& r, const std::vector<PreparedStep>& steps, const std::string& out) {
  json list = json::array();
  for (const auto& s : steps) list.push_back({{s.verb->name, ParamValues(s.options).output_relevant(s.verb->params)}});
  const char* kind = r.mergekit ? "mergekit-moe" : r.mergekit_merge ? "mergekit-yaml" : "moeforge";
  json j = {{"recipe", fs::absolute(r.file).string()}, {"kind", kind}, {"output", out}, {"steps", list}};
  if (r.mergekit || r.mergekit_merge) j["mergekit_config"] = r.body;
  return j;
}

// Every input and output of the whole recipe, checked together before anything runs: a step may
// not write what any step reads (paths resolved through symlinks).
void check_recipe_outputs(const Recipe& r, const std::vector<PreparedStep>& steps, const fs::path& work, bool force) {
  OutputPaths all;
  std::set<std::string> produced;
  all.inputs.push_back(r.file);
  for (const auto& s : steps) {
    ParamValues values(s.options);
    OutputPaths step = output_paths(*s.verb, values);
    for (const auto& in : step.inputs)
      if (!produced.count(in.string()) && in.string().rfind(work.string() + "/", 0) != 0) all.inputs.push_back(in);
    for (const auto& f : step.files) all.files.push_back(f);
    produced.insert(s.output);
  }
  // The final output: a checkpoint directory, or a single .gguf file (then already among the files).
  if (!writes_single_file(ParamValues(steps.back().options), steps.back().output)) all.directories.push_back(output_path(steps.back().output));
  check_outputs(all, force);
  check_outputs({all.inputs, {work}, {}}, false);  // a work folder left by a run with keep_intermediate is refused too
}

// A fresh folder for intermediates: created exclusively, removed on interrupt or failure.
fs::path make_work_dir(const std::string& out, bool dry_run) {
  fs::path work;
  if (dry_run) {
    std::string tmpl = (fs::temp_directory_path() / "moeforge-dry-run-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw IoError(tmpl + ": cannot create a temporary folder");
    work = tmpl;
  } else {
    work = out + ".moeforge-steps";
    if (::mkdir(work.c_str(), 0755) != 0)
      throw IoError(work.string() + (errno == EEXIST ? ": exists (intermediates of an earlier run?); hint: remove it" : ": cannot create"));
  }
  track_temporary_directory(work);
  return work;
}

}  // namespace

nlohmann::ordered_json run_recipe(const Recipe& r, const std::vector<Verb>& verbs, const RunOptions& o) {
  std::string given = !o.out.empty() ? o.out : r.output.empty() ? std::string() : (fs::absolute(r.file).parent_path() / r.output).string();
  if (given.empty()) throw UsageError(r.file.string() + ": output: missing (or pass --out DIR)");
  std::string out = fs::absolute(output_path(given)).lexically_normal().string();
  fs::path planned_work = o.dry_run ? fs::temp_directory_path() / "moeforge-dry-run" : fs::path(out + ".moeforge-steps");
  bool keep = r.keep_intermediate && !o.dry_run;
  // Validate everything that can be validated before creating anything.
  std::vector<RecipeStep> steps = r.steps;
  if (r.mergekit) {
    MergekitTranslation t = translate_mergekit(r, planned_work, false, o.tokenize);  // checks only
    steps = {t.step};
  }
  if (r.mergekit_merge) steps = {translate_mergekit_yaml(r)};
  check_recipe_outputs(r, prepare(r, steps, verbs, out, planned_work, o), planned_work, o.force);

  fs::path work = make_work_dir(out, o.dry_run);
  std::error_code ec;
  auto remove_work = [&] {
    fs::remove_all(work, ec);
    untrack_temporary_directory(work);
  };
  nlohmann::ordered_json report;
  try {
    if (r.mergekit) {
      MergekitTranslation t = translate_mergekit(r, work, true, o.tokenize);
      for (const auto& w : t.warnings) warn(w);
      steps = {t.step};
    }
    std::vector<PreparedStep> prepared = prepare(r, steps, verbs, out, work, o);
    json resolved = resolved_recipe(r, prepared, out);
    RunContext ctx;
    ctx.scratch_dir = work.string();
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
        rc = run_verb(*s.verb, ParamValues(options), ctx);
      } catch (const NoDataYet& e) {
        // A dry run cannot plan a step whose planning reads the weights an earlier step would write.
        if (!o.dry_run) throw;
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
    remove_work();
    throw;
  }
  if (keep) {
    untrack_temporary_directory(work);
    report["intermediate"] = work.string();
  } else {
    remove_work();
  }
  return report;
}

}  // namespace moeforge
