// A merge parameter as mergekit-yaml writes it, and its value for one tensor (mergekit config.py
// evaluate_setting): a number (YAML true/false count as 1/0); a gradient, a list of numbers
// interpolated at t = layer / (layers − 1) of the slice (non-layer tensors at t = 0); or a list
// of {filter, value} entries where the first entry whose filter is absent, "*" or a substring of
// the tensor name gives the value (itself a number or a gradient) — none matching means "not set
// here", and the lookup falls through to the next level.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace moeforge {

struct ConditionalValue {
  std::optional<std::string> filter;  // nullopt or "*": matches every tensor
  std::vector<double> value;          // one number, or a gradient
  std::string where;                  // key path for messages: "parameters.t[0]"
};

struct Setting {
  std::vector<double> values;                // a number (one value) or a gradient
  std::vector<ConditionalValue> conditions;  // a filter list (values empty)
  std::string where;
};
using SettingMap = std::map<std::string, Setting>;

// Parses one value; errors (UsageError) read "CONTEXT: KEY.PATH: problem".
Setting parse_setting(const nlohmann::json& value, const std::string& context, const std::string& where);
// The parameters mapping of one level (top level, slice, source/model).
SettingMap parse_settings(const nlohmann::json& mapping, const std::string& context, const std::string& where);

// mergekit's interpolation: s = t (n − 1), i0 = ⌊s⌋, i1 = min(n − 1, i0 + 1), f = s − i0,
// (1 − f) v[i0] + f v[i1], in double with that exact expression.
double interpolate(const std::vector<double>& values, double t);
// The value for one tensor, or nullopt when no filter entry matches.
std::optional<double> evaluate_setting(const Setting& setting, const std::string& tensor_name, double t);
// True when the entry's filter selects the tensor (plain substring, case-sensitive).
bool filter_matches(const ConditionalValue& c, const std::string& tensor_name);

}  // namespace moeforge
