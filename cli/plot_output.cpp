#include "cli/plot_output.hpp"

#include <cctype>
#include <string_view>

#include "cli/eval_plot.hpp"
#include "cli/verb.hpp"
#include "compress/usage_plot.hpp"
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

}  // namespace

std::string command_text(const Verb& verb, const ParamValues& values) {
  std::string cmd = "moeforge " + verb.name;
  for (const auto& p : verb.params)
    if (p.positional && values.has(p.name)) cmd += " " + value_text(values.all()[p.name]);
  for (const auto& p : verb.params) {
    if (p.positional || !values.has(p.name)) continue;
    const nlohmann::json& v = values.all()[p.name];
    if (p.type == ParamType::kFlag) {
      if (v.is_boolean() && v.get<bool>()) cmd += " --" + p.name;
      continue;
    }
    std::string text = value_text(v);
    if (!p.default_value.empty() && (text == p.default_value || text == shell_quote(p.default_value))) continue;
    cmd += " --" + p.name + " " + text;
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
