// moeforge run RECIPE.yaml [--dry-run] [--out DIR]: a moeforge pipeline or a mergekit-moe config.
#include <cstdio>

#include "cli/verb.hpp"
#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "recipes/runner.hpp"

namespace moeforge {

Verb run_verb(std::vector<Verb> verbs) {
  using T = ParamType;
  Verb v;
  v.name = "run";
  v.description = "run a recipe: a pipeline of verbs (YAML), or a mergekit-moe config as it is";
  v.params = with({
      {.name = "recipe", .type = T::kPath, .help = "recipe YAML", .positional = true, .required = true},
      {.name = "out", .type = T::kPath, .help = "output directory (overrides the recipe's output:)"},
      {.name = "dry-run", .type = T::kFlag, .help = "validate and print the plan of every step; write nothing", .affects_output = false},
      {.name = "force", .type = T::kFlag, .help = "replace an existing output directory", .affects_output = false},
      {.name = "threads", .type = T::kInt, .default_value = "0", .help = "worker threads (0 = all cores)", .affects_output = false, .min = 0.0},
  }, output_params());
  v.run = [verbs](const ParamValues& p, const RunContext&) {
    Recipe recipe = load_recipe(p.str("recipe"));
    RunOptions o;
    o.out = p.str("out");
    o.dry_run = p.flag("dry-run");
    o.force = p.flag("force");
    o.threads = static_cast<int>(p.integer("threads"));
    o.quiet = p.flag("quiet");
    o.json = p.flag("json");
    o.tokenize = [](const std::filesystem::path& model, const std::string& prompt) {
      // Byte-level models (a 256-token vocabulary without tokenizer files): the prompt's bytes.
      Checkpoint base(model);
      if (base.has_config() && base.config().value("vocab_size", 0) == 256 && !std::filesystem::exists(model / "tokenizer.json")) {
        std::vector<int32_t> ids;
        for (unsigned char c : prompt) ids.push_back(c);
        return ids;
      }
      throw UsageError(model.string() + ": text prompts need its tokenizer, which moeforge cannot load yet; give positive_token_ids");
    };
    auto report = run_recipe(recipe, verbs, o);
    if (o.json) std::printf("%s\n", report.dump(2).c_str());
    return 0;
  };
  return v;
}

}  // namespace moeforge
