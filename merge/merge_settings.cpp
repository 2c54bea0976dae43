#include "merge/merge_settings.hpp"

#include <charconv>
#include <cmath>

#include "core/error.hpp"

namespace moeforge {
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& context, const std::string& where, const std::string& what) {
  throw UsageError(context + ": " + where + ": " + what);
}

// pydantic's float coercion: numbers, booleans (1.0 / 0.0) and numeric strings.
std::optional<double> as_number(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    double d = 0;
    const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(b, s.data() + s.size(), d);
    if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty()) return d;
  }
  return std::nullopt;
}

double finite(const json& v, const std::string& context, const std::string& where) {
  auto d = as_number(v);
  if (!d) fail(context, where, "must be a number, found " + v.dump());
  if (!std::isfinite(*d)) fail(context, where, "must be a finite number, found " + v.dump());
  return *d;
}

// A number or a list of numbers (a gradient).
std::vector<double> numbers(const json& v, const std::string& context, const std::string& where) {
  if (!v.is_array()) return {finite(v, context, where)};
  if (v.empty()) fail(context, where, "an empty list; a gradient needs at least one number");
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!as_number(v[i])) fail(context, where + "[" + std::to_string(i) + "]", "gradient entries must be numbers, found " + v[i].dump());
    out.push_back(finite(v[i], context, where + "[" + std::to_string(i) + "]"));
  }
  return out;
}

ConditionalValue conditional(const json& e, const std::string& context, const std::string& where) {
  ConditionalValue c;
  c.where = where;
  for (const auto& [key, value] : e.items())
    if (key != "filter" && key != "value") fail(context, where + "." + key, "unknown key (a filter entry has filter and value)");
  if (!e.contains("value") || e["value"].is_null()) fail(context, where + ".value", "missing");
  if (e.contains("filter") && !e["filter"].is_null()) {
    if (!e["filter"].is_string()) fail(context, where + ".filter", "must be a string (a part of tensor names), found " + e["filter"].dump());
    c.filter = e["filter"].get<std::string>();
  }
  c.value = numbers(e["value"], context, where + ".value");
  return c;
}

}  // namespace

Setting parse_setting(const json& v, const std::string& context, const std::string& where) {
  Setting s;
  s.where = where;
  if (v.is_object())
    fail(context, where, "a single {filter, value} entry is not accepted by mergekit; write it as a list: `- filter: ...` `  value: ...`");
  bool entries = v.is_array() && !v.empty() && v[0].is_object();
  if (!entries) {
    s.values = numbers(v, context, where);
    return s;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    std::string at = where + "[" + std::to_string(i) + "]";
    if (!v[i].is_object()) fail(context, at, "a filter list holds only {filter, value} entries, found " + v[i].dump());
    s.conditions.push_back(conditional(v[i], context, at));
  }
  return s;
}

SettingMap parse_settings(const json& mapping, const std::string& context, const std::string& where) {
  SettingMap out;
  if (mapping.is_null()) return out;
  if (!mapping.is_object()) fail(context, where, "expected a mapping of parameter names to values, found " + mapping.dump());
  for (const auto& [key, value] : mapping.items()) {
    if (value.is_null()) continue;  // `weight:` with nothing: unset, as pydantic reads None
    out[key] = parse_setting(value, context, where + "." + key);
  }
  return out;
}

double interpolate(const std::vector<double>& v, double t) {
  double scaled = t * static_cast<double>(v.size() - 1);
  size_t i0 = static_cast<size_t>(static_cast<int64_t>(scaled));
  size_t i1 = std::min(v.size() - 1, i0 + 1);
  double frac = scaled - static_cast<double>(i0);
  return (1 - frac) * v[i0] + frac * v[i1];
}

bool filter_matches(const ConditionalValue& c, const std::string& tensor_name) {
  return !c.filter || *c.filter == "*" || (!tensor_name.empty() && tensor_name.find(*c.filter) != std::string::npos);
}

std::optional<double> evaluate_setting(const Setting& s, const std::string& tensor_name, double t) {
  if (s.conditions.empty()) return interpolate(s.values, t);
  for (const auto& c : s.conditions)
    if (filter_matches(c, tensor_name)) return interpolate(c.value, t);
  return std::nullopt;
}

}  // namespace moeforge
