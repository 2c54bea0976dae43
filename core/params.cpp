#include "core/params.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace moeforge {
using nlohmann::json;

namespace {

std::string kebab(std::string s) {
  for (auto& c : s)
    if (c == '_') c = '-';
  return s;
}

[[noreturn]] void bad(const std::string& context, const std::string& name, const std::string& what) {
  throw UsageError((context.empty() ? "--" + name : context + "." + name) + ": " + what);
}

// Integers are parsed as integers (never through double, which loses digits and wraps): from JSON
// integers, or from text with std::from_chars; a YAML 2.5 or 1e30 is refused, not truncated.
int64_t to_integer(const json& v, const std::string& context, const std::string& name) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad(context, name, "is out of range, found " + v.dump());
    return v.get<int64_t>();
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    int64_t out = 0;
    const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(b, s.data() + s.size(), out);
    if (ec == std::errc::result_out_of_range) bad(context, name, "is out of range (at most " + std::to_string(INT64_MAX) + "), found " + s);
    if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty()) return out;
  }
  bad(context, name, "must be an integer, found " + v.dump());
}

double to_number(const json& v, const std::string& context, const std::string& name) {
  double d = 0;
  bool ok = false;
  if (v.is_number()) {
    d = v.get<double>();
    ok = true;
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(b, s.data() + s.size(), d);
    if (ec == std::errc::result_out_of_range) bad(context, name, "is out of range, found " + s);
    ok = ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
  }
  if (!ok) bad(context, name, "must be a number, found " + v.dump());
  if (!std::isfinite(d)) bad(context, name, "must be a finite number, found " + v.dump());
  return d;
}

void check_range(const ParamSpec& p, double d, const std::string& context) {
  auto fmt = [](double x) {
    std::string s = std::to_string(x);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  bool low_ok = !p.min || (p.min_exclusive ? d > *p.min : d >= *p.min);
  bool high_ok = !p.max || (p.max_exclusive ? d < *p.max : d <= *p.max);
  if (low_ok && high_ok) return;
  std::string range = p.min && p.max ? std::string(p.min_exclusive ? "(" : "[") + fmt(*p.min) + ", " + fmt(*p.max) + (p.max_exclusive ? ")" : "]")
                      : p.min       ? std::string(p.min_exclusive ? "> " : ">= ") + fmt(*p.min)
                                    : std::string(p.max_exclusive ? "< " : "<= ") + fmt(*p.max);
  bad(context, p.name, "must be " + (p.min && p.max ? "in " + range : range) + ", found " + fmt(d));
}

json as_list(const json& v) {
  if (v.is_array()) return v;
  if (v.is_string()) {
    json out = json::array();
    for (const auto& part : split(v.get<std::string>(), ',')) out.push_back(part);
    return out;
  }
  return json::array({v});
}

json convert(const ParamSpec& p, const json& v, const std::string& context) {
  switch (p.type) {
    case ParamType::kString:
    case ParamType::kPath:
      if (!v.is_string()) bad(context, p.name, "must be a string, found " + v.dump());
      return v;
    case ParamType::kChoice: {
      // A YAML true/false for a true|false choice (recipes write `normalize: false`).
      if (v.is_boolean() && std::find(p.choices.begin(), p.choices.end(), v.dump()) != p.choices.end()) return v.dump();
      if (!v.is_string()) bad(context, p.name, "must be one of " + join(p.choices, ", ") + ", found " + v.dump());
      for (const auto& c : p.choices)
        if (c == v.get<std::string>()) return v;
      bad(context, p.name, "must be one of " + join(p.choices, ", ") + ", found \"" + v.get<std::string>() + "\"");
    }
    case ParamType::kInt: {
      int64_t i = to_integer(v, context, p.name);
      check_range(p, static_cast<double>(i), context);
      return i;
    }
    case ParamType::kFloat: {
      double d = to_number(v, context, p.name);
      check_range(p, d, context);
      return d;
    }
    case ParamType::kFlag:
      if (v.is_boolean()) return v;
      if (v.is_string() && (v == "true" || v == "1")) return true;
      if (v.is_string() && (v == "false" || v == "0")) return false;
      bad(context, p.name, "must be true or false, found " + v.dump());
    case ParamType::kSize:
      if (v.is_number_unsigned()) return v;
      if (!v.is_string()) bad(context, p.name, "must be a size such as 5GB, found " + v.dump());
      try {
        return parse_size(v.get<std::string>());
      } catch (const UsageError& e) {
        bad(context, p.name, e.what());
      }
    case ParamType::kPathList: {
      json out = json::array();
      for (const auto& e : v.is_array() ? v : json::array({v})) {
        if (!e.is_string()) bad(context, p.name, "must be a list of paths, found " + e.dump());
        out.push_back(e);
      }
      return out;
    }
    case ParamType::kFloatList:
    case ParamType::kIntList: {
      json out = json::array();
      bool integer = p.type == ParamType::kIntList;
      for (const auto& e : as_list(v)) {
        if (integer) {
          int64_t i = to_integer(e, context, p.name);
          check_range(p, static_cast<double>(i), context);
          out.push_back(i);
        } else {
          double d = to_number(e, context, p.name);
          check_range(p, d, context);
          out.push_back(d);
        }
      }
      return out;
    }
  }
  return v;
}

}  // namespace

std::string param_type_name(ParamType t) {
  switch (t) {
    case ParamType::kString: return "TEXT";
    case ParamType::kInt: return "INT";
    case ParamType::kFloat: return "FLOAT";
    case ParamType::kFlag: return "";
    case ParamType::kPath: return "PATH";
    case ParamType::kPathList: return "PATH...";
    case ParamType::kFloatList: return "FLOAT,...";
    case ParamType::kIntList: return "INT,...";
    case ParamType::kSize: return "SIZE";
    case ParamType::kChoice: return "CHOICE";
  }
  return "";
}

ParamValues validate_params(const ParamTable& table, const json& given, const std::string& context) {
  if (!given.is_object()) throw UsageError(context + ": expected a mapping of options, found " + given.dump());
  json out = json::object();
  std::set<std::string> known;
  for (const auto& p : table) known.insert(p.name);
  for (const auto& [key, value] : given.items()) {
    std::string k = kebab(key);
    if (!known.count(k)) {
      std::vector<std::string> names(known.begin(), known.end());
      bad(context, key, "unknown option (known: " + join(names, ", ") + ")");
    }
    if (!value.is_null()) out[k] = convert(*std::find_if(table.begin(), table.end(), [&](const ParamSpec& p) { return p.name == k; }), value, context);
  }
  for (const auto& p : table) {
    if (out.contains(p.name)) continue;
    if (p.required) bad(context, p.name, "is required");
    if (!p.default_value.empty()) out[p.name] = convert(p, json(p.default_value), context);
    else if (p.type == ParamType::kFlag) out[p.name] = false;
  }
  return ParamValues(out);
}

std::string ParamValues::str(const std::string& n) const { return has(n) ? values_[n].get<std::string>() : std::string(); }
int64_t ParamValues::integer(const std::string& n) const { return values_.at(n).get<int64_t>(); }
int ParamValues::count(const std::string& n) const {
  int64_t v = integer(n);
  if (v > INT32_MAX || v < INT32_MIN) throw UsageError("--" + n + ": " + std::to_string(v) + " is out of range (at most " + std::to_string(INT32_MAX) + ")");
  return static_cast<int>(v);
}
double ParamValues::number(const std::string& n) const { return values_.at(n).get<double>(); }
bool ParamValues::flag(const std::string& n) const { return has(n) && values_[n].get<bool>(); }
uint64_t ParamValues::size(const std::string& n) const { return values_.at(n).get<uint64_t>(); }
std::vector<std::string> ParamValues::strings(const std::string& n) const {
  return has(n) ? values_[n].get<std::vector<std::string>>() : std::vector<std::string>{};
}
std::vector<double> ParamValues::numbers(const std::string& n) const {
  return has(n) ? values_[n].get<std::vector<double>>() : std::vector<double>{};
}
std::vector<int64_t> ParamValues::integers(const std::string& n) const {
  return has(n) ? values_[n].get<std::vector<int64_t>>() : std::vector<int64_t>{};
}

json ParamValues::output_relevant(const ParamTable& table) const {
  json out = json::object();
  for (const auto& p : table)
    if (p.affects_output && has(p.name)) out[p.name] = values_[p.name];
  return out;
}

ParamTable writer_params() {
  using T = ParamType;
  return {
      {.name = "dtype", .type = T::kChoice,
       .help = "output dtype (default: keep each input tensor's); q8_0, q4_0, q4_k, q5_k, q6_k for GGUF only",
       .choices = {"bf16", "f16", "f32", "f64", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}},
      {.name = "format", .type = T::kChoice, .help = "output format (default: gguf when the output ends in .gguf, else safetensors)",
       .choices = {"safetensors", "gguf"}},
      {.name = "layout", .type = T::kChoice,
       .help = "routed experts per expert or in the transformers-v5 fused layout (default: the input's)", .choices = {"per-expert", "fused"}},
      {.name = "max-shard-size", .type = T::kSize,
       .help = "largest shard, e.g. 500MB, 5GB, 2GiB (default: 5GB for safetensors; a GGUF is split into llama.cpp split files only when given)"},
      threads_param(),
      {.name = "dry-run", .type = T::kFlag, .help = "print the plan and write nothing", .affects_output = false},
      {.name = "force", .type = T::kFlag, .help = "replace an existing output directory", .affects_output = false},
  };
}

ParamSpec threads_param() {
  return {.name = "threads", .type = ParamType::kInt, .default_value = "0",
          .help = "worker threads (0 = all cores; capped at the cores)", .affects_output = false, .min = 0.0};
}

ParamTable with(ParamTable base, const ParamTable& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

}  // namespace moeforge
