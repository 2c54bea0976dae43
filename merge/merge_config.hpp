// A mergekit-yaml merge configuration (mergekit config.py MergeConfiguration) read from its JSON
// form, with mergekit's rules: `models:` (one slice over all layers, base_model appended last when
// not listed) or `slices:` (sources with layer_range [start, end)), parameters at the top level,
// per slice and per source/model, base_model (a slice's own overrides the top level), dtype,
// out_dtype, tokenizer_source. Parameter lookup follows ConfigReader.parameter: the source entry
// of the model, then the slice, then the top level, then the method's default. Errors name the
// file and the key path; keys mergekit ignores (unknown keys, parameters the method does not
// take) are warnings.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/dtype.hpp"
#include "merge/merge_registry.hpp"
#include "merge/merge_settings.hpp"

namespace moeforge {

// Turns a model reference as written into a model id (a local checkpoint's absolute path), or
// throws naming the key path (Hugging Face repository ids are refused with a hint).
using ModelResolver = std::function<std::string(const std::string& reference, const std::string& where)>;
ModelResolver local_model_resolver(const std::filesystem::path& dir, const std::string& context);
// The absolute path of a local model (relative to dir), or a UsageError "WHAT: \"REF\" is not a
// local model directory (...)" with a hint for Hugging Face repository ids and LoRA references.
std::string require_local_model(const std::string& reference, const std::filesystem::path& dir, const std::string& what);

struct SourceDef {
  int model = 0;                                          // index into MergeConfig::models
  std::optional<std::pair<int64_t, int64_t>> layer_range;  // none: every layer (the models: form)
  SettingMap params;
  std::string where;  // "slices[1].sources[0]" or "models[2]"
};

struct SliceDef {
  std::vector<SourceDef> sources;
  SettingMap params;
  std::optional<int> base_model;  // a slice's own base_model
  std::string where;
};

enum class TokenizerSource { kDonor, kBase, kModel };

struct MergeConfig {
  std::string context;  // the file, for messages
  const MergeMethodInfo* method = nullptr;
  std::vector<std::string> models;  // distinct model ids, in order of first mention
  std::optional<int> base_model;
  bool uses_slices = false;         // `slices:` (frankenmerge layout) rather than `models:`
  std::vector<SliceDef> slices;     // `models:` becomes one slice
  SettingMap params;
  std::optional<DType> dtype, out_dtype;
  TokenizerSource tokenizer = TokenizerSource::kDonor;
  int tokenizer_model = -1;
  std::optional<uint64_t> seed;     // moeforge extension key `seed`
  std::vector<std::string> warnings;

  std::optional<int> base_of(const SliceDef& s) const { return s.base_model ? s.base_model : base_model; }
  // The model whose config and tokenizer the output carries: base_model, else the first source.
  int donor() const;
};

// The context of a config built from `moeforge merge` options: hints then name the options.
inline const std::string kCommandLine = "command line";

MergeConfig parse_merge_config(const nlohmann::json& body, const std::string& context, const ModelResolver& resolve);

// ConfigReader.parameter: the value of `name` for one tensor (output name for global parameters,
// the model's input name for per-model ones) at gradient position t; nullopt when unset everywhere.
std::optional<double> lookup_parameter(const MergeConfig& c, const SliceDef* slice, const std::string& name, std::optional<int> model,
                                       const std::string& tensor, double t);

struct ResolvedParameters {
  std::map<std::string, double> global;
  std::vector<std::map<std::string, double>> per_input;  // per slice source
};
// Every parameter of the method for one tensor, defaults applied; a required one missing is a
// UsageError naming the tensor, the model and where to set it.
ResolvedParameters resolve_parameters(const MergeConfig& c, const SliceDef& slice, const std::string& out_name,
                                      const std::vector<std::string>& in_names, double t);

// Filter entries (filter other than "*") that select none of the given tensor names, as warnings.
std::vector<std::string> unmatched_filters(const MergeConfig& c, const std::vector<std::string>& tensor_names);

}  // namespace moeforge
