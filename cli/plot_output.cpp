#include "cli/plot_output.hpp"

#include <cctype>
#include <string_view>

#include "cli/eval_plot.hpp"
#include "cli/verb.hpp"
#include "compress/usage_plot.hpp"
#include "core/strings.hpp"
#include "plot/labels.hpp"

namespace moeforge {
namespace {

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=:,+@%").find(c) != std::string_view::npos)) plain = false;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string value_text(const nlohmann::json& v) {
  if (v.is_string()) return shell_quote(v.get<std::string>());
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : " ") + value_text(x);
    return out;
  }
  return v.dump();
}

bool is_default(const ParamSpec& p, const nlohmann::json& v) {
  if (p.default_value.empty()) return false;
  try {
    switch (p.type) {
      case ParamType::kInt: return v.is_number_integer() && v.get<int64_t>() == std::stoll(p.default_value);
      case ParamType::kFloat: return v.is_number() && v.get<double>() == std::stod(p.default_value);
      case ParamType::kSize: return v.is_number_unsigned() && v.get<uint64_t>() == parse_size(p.default_value);
      default: return v.is_string() && v.get<std::string>() == p.default_value;
    }
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::string command_text(const Verb& verb, const ParamValues& values) {
  std::string cmd = "moeforge " + verb.name;
  for (const auto& p : verb.params)
    if (p.positional && values.has(p.name)) cmd += " " + value_text(values.all()[p.name]);
  for (const auto& p : verb.params) {
    // Options that do not shape any output (--threads, --quiet, --force …) are left out, outputs kept.
    bool output = p.role != PathRole::kInput && (p.type == ParamType::kPath || p.type == ParamType::kPathList);
    if (p.positional || !values.has(p.name) || (!p.affects_output && !output)) continue;
    const nlohmann::json& v = values.all()[p.name];
    if (p.type == ParamType::kFlag) {
      if (v.is_boolean() && v.get<bool>()) cmd += " --" + p.name;
      continue;
    }
    if (!is_default(p, v)) cmd += " --" + p.name + " " + value_text(v);
  }
  return cmd;
}

std::string plot_model_name(const std::string& path) { return ellipsize(short_path_name(path), 60); }

std::string plot_metadata(const Verb& verb, const ParamValues& values) {
  nlohmann::ordered_json j = {{"command", command_text(verb, values)}, {"provenance", provenance(verb, values)}};
  return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string observe_plot(const Verb& verb, const ParamValues& values, const CalibrationStats& stats) {
  return usage_heat_map_svg(stats, plot_model_name(values.str("model")), plot_metadata(verb, values));
}

std::string eval_plot(const Verb& verb, const ParamValues& values, const std::vector<EvalResult>& results) {
  return eval_plot_svg({{plot_model_name(values.str("model")), results}}, plot_metadata(verb, values));
}

}  // namespace moeforge
