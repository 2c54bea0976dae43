// Runs a recipe: validates every step against its verb's parameter table (unknown keys, types,
// ranges, missing input paths — all before anything is written), then runs the verbs in order,
// each step's output feeding the next step's input. Intermediate checkpoints live in
// OUTPUT.moeforge-steps/ and are removed at the end unless keep_intermediate is set. The resolved
// recipe (absolute paths, every default filled in) is written beside the output as
// moeforge-recipe.yaml and into the output's provenance. --dry-run plans every step without
// writing: later steps are planned from the plans of the steps before them.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/verb.hpp"
#include "recipes/mergekit_config.hpp"
#include "recipes/recipe.hpp"

namespace moeforge {

struct RunOptions {
  std::string out;  // overrides the recipe's output:
  bool dry_run = false;
  bool force = false;
  int threads = 0;
  bool quiet = false;
  bool json = false;
  PromptTokenizer tokenize;  // for mergekit text prompts
};

// Returns a report: {"recipe", "output", "steps": [{"verb", "output", "options"}]}.
nlohmann::ordered_json run_recipe(const Recipe& recipe, const std::vector<Verb>& verbs, const RunOptions& options);

}  // namespace moeforge
