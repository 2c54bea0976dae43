// The verbs of the command line (each defined in its own file here) and what they share: --json
// and --quiet, provenance, and printing a report. main.cpp turns their tables into CLI11
// subcommands; `run` hands the same verbs to the recipe runner.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/verb.hpp"

namespace moeforge {

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
Verb merge_verb();
Verb tokenize_verb();
Verb run_verb(std::vector<Verb> verbs);  // runs recipes with the given verbs

// Every verb, in the order `moeforge --help` lists them.
std::vector<Verb> all_verbs();

}  // namespace moeforge
