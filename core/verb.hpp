// A verb of moeforge: its name, description, parameter table and the function that runs it. The
// command line builds its flags from the table and recipes validate their steps against the same
// table and call the same function, so a recipe step and the verb run by hand cannot differ.
#pragma once
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/params.hpp"

namespace moeforge {

// What a recipe adds to a verb's run: provenance for the output, the resolved recipe text, and in
// a dry run the plans of earlier steps standing in for outputs that were not written.
struct RunContext {
  nlohmann::json recipe;     // null when the verb runs on its own
  std::string recipe_yaml;   // written beside the output as moeforge-recipe.yaml
  std::map<std::string, nlohmann::json> planned;  // output path → describe_plan() of the step that makes it
  nlohmann::json* plan_out = nullptr;             // a dry run stores its plan here too
};

struct Verb {
  std::string name;
  std::string description;
  ParamTable params;
  std::function<int(const ParamValues&, const RunContext&)> run;  // returns the exit status
};

}  // namespace moeforge
