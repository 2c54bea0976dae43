// A verb of the command line: its name, one-line description, parameter table and the function
// that runs it. main.cpp turns the tables into CLI11 subcommands; recipes reuse the tables.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/params.hpp"

namespace moeforge {

struct Verb {
  std::string name;
  std::string description;
  ParamTable params;
  std::function<int(const ParamValues&)> run;  // returns the exit status
};

// --json and --quiet, shared by every verb.
ParamTable output_params();

// Provenance recorded with every written checkpoint: tool, verb, inputs and the options that
// shape the output (never --threads, so the bytes do not depend on it).
nlohmann::json provenance(const Verb& verb, const ParamValues& values);

// Prints a JSON report or calls the human printer.
void emit(const ParamValues& values, const nlohmann::ordered_json& report, const std::function<void()>& human);

Verb inspect_verb();
Verb diff_verb();
Verb convert_verb();
Verb eval_verb();
Verb observe_verb();
Verb compose_verb();
Verb upcycle_verb();
Verb prune_verb();
Verb merge_experts_verb();

}  // namespace moeforge
