#include "recipes/recipe.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "core/error.hpp"

namespace moeforge {
namespace {

nlohmann::json scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  static const std::regex kInt("[-+]?[0-9]+"), kFloat("[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s.empty() || s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
  if (std::regex_match(s, kInt)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
    }
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  if (s == ".inf" || s == "+.inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf") return -std::numeric_limits<double>::infinity();
  return s;
}

nlohmann::json convert(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Scalar: return scalar(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& x : n) a.push_back(convert(x));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = convert(kv.second);
      return o;
    }
  }
  return nullptr;
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, x] : v.items()) {
      out << YAML::Key << k << YAML::Value;
      emit(out, x);
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& x : v) emit(out, x);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    out << YAML::DoubleQuoted << v.get<std::string>();
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << v.dump();
  }
}

[[noreturn]] void fail(const Recipe& r, const std::string& key, const std::string& what) {
  throw UsageError(r.file.string() + ": " + key + ": " + what);
}

}  // namespace

nlohmann::json yaml_to_json(const std::string& text, const std::string& label) {
  try {
    return convert(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    throw UsageError(label + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1) +
                      ": " + e.msg + ")");
  }
}

std::string json_to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

Recipe load_recipe(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": cannot open the recipe");
  std::stringstream buf;
  buf << in.rdbuf();
  Recipe r;
  r.file = file;
  r.text = buf.str();
  r.body = yaml_to_json(r.text, file.string());
  if (!r.body.is_object()) fail(r, "(top level)", "expected a mapping with `steps:` (a moeforge pipeline), `base_model:` and `experts:` (a mergekit-moe config) or `merge_method:` (a mergekit-yaml config)");
  if (r.body.contains("merge_method")) {
    if (r.body.contains("steps")) fail(r, "steps", "a mergekit-yaml config (merge_method) cannot also have steps");
    r.mergekit_merge = true;
    if (r.body.contains("output") && r.body["output"].is_string()) r.output = r.body["output"];  // a moeforge extension
    return r;
  }
  if (r.body.contains("base_model") || r.body.contains("experts")) {
    if (r.body.contains("steps")) fail(r, "steps", "a mergekit-moe config (base_model/experts) cannot also have steps");
    r.mergekit = true;
    if (r.body.contains("output") && r.body["output"].is_string()) r.output = r.body["output"];  // a moeforge extension
    return r;
  }
  for (const auto& [key, value] : r.body.items())
    if (key != "steps" && key != "output" && key != "keep_intermediate" && key != "description")
      fail(r, key, "unknown key (known: steps, output, keep_intermediate, description)");
  if (!r.body.contains("steps") || !r.body["steps"].is_array() || r.body["steps"].empty())
    fail(r, "steps", "expected a non-empty list of steps such as `- compose: {...}`");
  if (r.body.contains("output")) {
    if (!r.body["output"].is_string()) fail(r, "output", "must be a path");
    r.output = r.body["output"];
  }
  if (r.body.contains("keep_intermediate")) {
    if (!r.body["keep_intermediate"].is_boolean()) fail(r, "keep_intermediate", "must be true or false");
    r.keep_intermediate = r.body["keep_intermediate"];
  }
  const auto& steps = r.body["steps"];
  for (size_t i = 0; i < steps.size(); ++i) {
    std::string where = "steps[" + std::to_string(i) + "]";
    const auto& s = steps[i];
    if (!s.is_object() || s.size() != 1) fail(r, where, "expected one verb with its options, e.g. `- prune: {keep: 2}`");
    auto it = s.begin();
    if (!it.value().is_object() && !it.value().is_null()) fail(r, where + "." + it.key(), "options must be a mapping");
    r.steps.push_back({it.key(), it.value().is_null() ? nlohmann::json::object() : it.value(), where + "." + it.key()});
  }
  return r;
}

}  // namespace moeforge
