// Parameter tables: each verb declares its options once (name, type, default, help, choices,
// range). The CLI builds its flags from the table and recipes validate their steps against the
// same table, so the two cannot drift. Values arrive as JSON: strings from the command line,
// native types from YAML; validate_params() converts and checks both the same way.
#pragma once
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moeforge {

enum class ParamType {
  kString, kInt, kFloat, kFlag, kPath, kPathList, kFloatList, kIntList, kSize, kChoice,
};

// What a path option names; the output-safety rules (core/output_safety.hpp) are applied to every
// command from these roles before it runs, so no verb can forget them.
enum class PathRole {
  kInput,       // read: a checkpoint, data, statistics, a list file ...
  kOutputDir,   // a checkpoint directory the verb writes
  kOutputFile,  // a single file the verb writes (--report, --plot, statistics ...)
};

struct ParamSpec {
  std::string name;  // kebab-case: "max-shard-size"; recipes may also write max_shard_size
  ParamType type = ParamType::kString;
  std::string default_value;  // textual; empty = no default
  std::string help;
  std::vector<std::string> choices;  // for kChoice
  bool positional = false;
  bool required = false;
  bool affects_output = true;  // false for --threads, --quiet ...: left out of provenance
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  bool greedy = false;  // list option: `--data a b c` takes every following value
  PathRole role = PathRole::kInput;  // for kPath / kPathList
};
using ParamTable = std::vector<ParamSpec>;

// Validated values: every table entry with a value or default is present, typed.
class ParamValues {
 public:
  ParamValues() = default;
  explicit ParamValues(nlohmann::json values) : values_(std::move(values)) {}
  bool has(const std::string& name) const { return values_.contains(name) && !values_[name].is_null(); }
  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  // An integer option used as an int (a count, an index): UsageError when it does not fit.
  int count(const std::string& name) const;
  double number(const std::string& name) const;
  bool flag(const std::string& name) const;
  uint64_t size(const std::string& name) const;
  std::vector<std::string> strings(const std::string& name) const;
  std::vector<double> numbers(const std::string& name) const;
  std::vector<int64_t> integers(const std::string& name) const;
  const nlohmann::json& all() const { return values_; }
  void set(const std::string& name, nlohmann::json value) { values_[name] = std::move(value); }
  // Values that shape the output (for provenance): drops affects_output=false entries.
  nlohmann::json output_relevant(const ParamTable& table) const;

 private:
  nlohmann::json values_ = nlohmann::json::object();
};

// Checks names, types, choices and ranges; errors read "CONTEXT.KEY: problem" (recipes) or
// "--key: problem" (CLI, context empty).
ParamValues validate_params(const ParamTable& table, const nlohmann::json& given, const std::string& context);

// Options every writing verb shares.
ParamTable writer_params();
// --threads, the same in every verb: 0 = all cores; more than the cores is capped (resolve_threads;
// the command line warns once).
ParamSpec threads_param();
ParamTable with(ParamTable base, const ParamTable& extra);

std::string param_type_name(ParamType t);

}  // namespace moeforge
