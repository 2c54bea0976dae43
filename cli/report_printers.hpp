#pragma once
// Human-readable renderings of the verbs' JSON reports (inspect, diff, eval, statistics, write plans).
// The JSON is the interface; these only lay it out for a terminal, so they live with the CLI.

#include <cstddef>

#include <nlohmann/json.hpp>

namespace moeforge {

void print_inspection(const nlohmann::ordered_json& report);
void print_diff(const nlohmann::ordered_json& report, size_t max_rows);
void print_eval(const nlohmann::ordered_json& report);
void print_stats(const nlohmann::ordered_json& description);
void print_plan(const nlohmann::json& description);  // a checkpoint's write plan (--dry-run)

}  // namespace moeforge
