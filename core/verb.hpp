// A verb of moeforge: its name, description, parameter table and the function that runs it. The
// command line builds its flags from the table and recipes validate their steps against the same
// table and call the same function, so a recipe step and the verb run by hand cannot differ.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/output_safety.hpp"
#include "core/params.hpp"

namespace moeforge {

// What a recipe adds to a verb's run: provenance for the output, the resolved recipe text, and in
// a dry run the plans of earlier steps standing in for outputs that were not written.
struct RunContext {
  nlohmann::json recipe;     // null when the verb runs on its own
  std::string recipe_yaml;   // written beside the output as moeforge-recipe.yaml
  std::map<std::string, nlohmann::json> planned;  // output path → describe_plan() of the step that makes it
  nlohmann::json* plan_out = nullptr;             // a dry run stores its plan here too
  std::string scratch_dir;  // the recipe's intermediates folder: its paths are not provenance
};

struct Verb {
  std::string name;
  std::string description;
  ParamTable params;
  std::function<int(const ParamValues&, const RunContext&)> run;  // returns the exit status
};

// The paths given to options of one role, in table order.
std::vector<std::string> paths_of(const Verb& verb, const ParamValues& values, PathRole role);
// An output-directory option names a single file instead when the command writes GGUF: --format
// gguf, or no --format and a path ending in .gguf.
bool writes_single_file(const ParamValues& values, const std::string& output);
// Every input, output directory and output file of one command, from its parameter roles.
OutputPaths output_paths(const Verb& verb, const ParamValues& values);
// How every verb runs (command line and recipe steps): --threads capped at the cores (warned
// once), the output rules checked before any work, then the verb.
int run_verb(const Verb& verb, ParamValues values, const RunContext& ctx);
// A single-file output named by `option` (e.g. observe --out), written atomically under the same
// rules (--force, nothing written by --dry-run).
void write_file_output(const ParamValues& values, const std::string& option, const std::string& bytes);

}  // namespace moeforge
