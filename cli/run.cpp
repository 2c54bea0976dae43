// moeforge run RECIPE.yaml [--dry-run] [--out DIR]: a moeforge pipeline, a mergekit-moe config or a
// mergekit-yaml (dense merge) config.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/verb.hpp"
#include "core/error.hpp"
#include "text/text_data.hpp"
#include "text/tokenizer.hpp"
#include "recipes/runner.hpp"

namespace moeforge {

Verb run_verb(std::vector<Verb> verbs) {
  using T = ParamType;
  Verb v;
  v.name = "run";
  v.description = "run a recipe: a pipeline of verbs (YAML), or a mergekit-moe or mergekit-yaml config as it is";
  v.params = with({
      {.name = "recipe", .type = T::kPath, .help = "recipe YAML", .positional = true, .required = true},
      {.name = "out", .type = T::kPath, .help = "output directory (overrides the recipe's output:)", .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "dry-run", .type = T::kFlag, .help = "validate and print the plan of every step; write nothing", .affects_output = false},
      {.name = "force", .type = T::kFlag, .help = "replace an existing output directory", .affects_output = false},
      threads_param(),
  }, output_params());
  v.run = [verbs](const ParamValues& p, const RunContext&) {
    Recipe recipe = load_recipe(p.str("recipe"));
    RunOptions o;
    o.out = p.str("out");
    o.dry_run = p.flag("dry-run");
    o.force = p.flag("force");
    o.threads = p.count("threads");
    o.quiet = p.flag("quiet");
    o.json = p.flag("json");
    // mergekit-moe prompts through the base model's tokenizer, loaded once per model.
    auto loaded = std::make_shared<std::map<std::filesystem::path, std::unique_ptr<Tokenizer>>>();
    o.tokenize = [loaded](const std::filesystem::path& model, const std::string& prompt) {
      auto& tok = (*loaded)[model];
      if (!tok) tok = load_tokenizer(model);
      return tokenize_prompt(*tok, prompt);
    };
    auto report = run_recipe(recipe, verbs, o);
    if (o.json) std::printf("%s\n", report.dump(2).c_str());
    return 0;
  };
  return v;
}

}  // namespace moeforge
