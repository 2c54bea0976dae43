// The dense merge methods moeforge runs with mergekit's semantics, as data: each method's name,
// what it does with base_model, and its global and per-model parameters with mergekit's defaults
// (merge_methods/registry.py and the method classes at arcee-ai/mergekit a6e40288). The merge
// verb's options, the config reader and the README table are all built from this one table.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

struct MergeParam {
  std::string name;
  bool per_model = false;                // a `models[].parameters` key; otherwise global
  bool required = false;                 // no default: every (non-base) model must set it
  std::optional<double> default_value;   // none and not required: "unset" (passthrough scale)
  bool boolean = false;                  // true/false in YAML (mergekit reads it as 1.0/0.0)
  std::string help;
};

// What a method does with base_model.
enum class BaseRule {
  kRequired,   // the reference point (task vectors, interpolation start)
  kOptional,   // used when given (nuslerp, multislerp: task-vector space)
  kAsInput,    // merged like any other model when given (linear, karcher, passthrough)
};

// Generalized task arithmetic (task_arithmetic, ties, dare_*, breadcrumbs*, della*).
enum class Sparsify { kNone, kMagnitude, kRandom, kMagnitudeOutliers, kDella };

struct MergeMethodInfo {
  std::string name;
  BaseRule base;
  std::vector<MergeParam> params;
  std::string summary;
  bool gta = false;  // the task-arithmetic family below applies
  Sparsify sparsify = Sparsify::kNone;
  bool sign_consensus = false;
  bool random = false;  // draws random numbers (seeded)
};

const std::vector<MergeMethodInfo>& merge_methods();
const MergeMethodInfo* find_merge_method(std::string_view name);
// "linear, slerp, ..." for messages.
std::string merge_method_names();
const MergeParam* find_param(const MergeMethodInfo& m, std::string_view name);

}  // namespace moeforge
