// Recipes: YAML files that run moeforge verbs in sequence, or mergekit-moe configs.
//   moeforge pipeline:
//     output: out/dir              # or `moeforge run --out DIR`
//     keep_intermediate: false     # keep each step's checkpoint under OUTPUT.moeforge-steps/
//     steps:
//       - compose: {expert: [a, b], router: centroid, router-bytes: [a.txt, b.txt]}
//       - prune: {keep: 1, bytes: [de.txt]}       # input: the previous step's output
//   Step options are exactly the verb's options (kebab-case or snake_case), validated by the same
//   parameter tables as the command line. Relative paths are relative to the recipe file.
//   mergekit-moe config: recognised by its `base_model` and `experts` keys (see mergekit_config.hpp).
//   mergekit-yaml config: recognised by `merge_method`; runs as one `merge` step (mergekit_yaml.hpp).
//   A path option may name an earlier step's output as "@stepN" (N counts from 1), e.g. a compose
//   step's expert list holding the model a merge step made.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moeforge {

struct RecipeStep {
  std::string verb;
  nlohmann::json options;  // as written (paths not yet resolved)
  std::string where;       // "steps[1].prune", for messages
};

struct Recipe {
  std::filesystem::path file;
  std::string text;                 // the YAML as written
  bool mergekit = false;            // a mergekit-moe config
  bool mergekit_merge = false;      // a mergekit-yaml (dense merge) config
  nlohmann::json body;              // the whole document as JSON
  std::vector<RecipeStep> steps;    // moeforge pipelines
  std::string output;               // `output:` ("" when absent)
  bool keep_intermediate = false;
};

// Parses and checks the document's structure; errors read "FILE: KEY.PATH: problem".
Recipe load_recipe(const std::filesystem::path& file);
// The same from text already read (`file` names it in messages and anchors relative paths).
Recipe parse_recipe(const std::string& text, const std::filesystem::path& file);

// YAML → JSON with YAML 1.2 core scalars (true/false, null, numbers; quoted scalars stay strings).
nlohmann::json yaml_to_json(const std::string& text, const std::string& label);
std::string json_to_yaml(const nlohmann::json& value);

}  // namespace moeforge
