#include "recipes/recipe.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <limits>
#include <regex>
#include <sstream>

#include "core/error.hpp"
#include "core/file_io.hpp"

namespace moeforge {
using nlohmann::json;
namespace {

// Limits that keep a hostile document (recursive aliases, "billion laughs" expansion, deep
// nesting) from crashing or exhausting memory: aliases are shared nodes in yaml-cpp, and only
// this conversion expands them, so counting here bounds the whole document.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 200'000;

struct Converter {
  std::string label;
  size_t nodes = 0;

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw UsageError(label + ": " + (path.empty() ? "(top level)" : path) + ": " + what);
  }

  json scalar(const YAML::Node& n, const std::string& path) const {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted: always a string
    static const std::regex kInt("[-+]?[0-9]+"), kFloat("[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.empty() || s == "null" || s == "Null" || s == "NULL" || s == "~") return nullptr;
    const char* b = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    const char* e = s.data() + s.size();
    if (std::regex_match(s, kInt)) {
      int64_t i = 0;
      auto [ptr, ec] = std::from_chars(b, e, i);
      if (ec == std::errc() && ptr == e) return i;
      fail(path, s + " is out of the integer range");
    }
    if (std::regex_match(s, kFloat)) {
      double d = 0;
      auto [ptr, ec] = std::from_chars(b, e, d);
      if (ec == std::errc() && ptr == e) return d;
      fail(path, s + " is out of the range of a number");
    }
    if (s == ".inf" || s == "+.inf" || s == ".Inf" || s == ".INF") return std::numeric_limits<double>::infinity();
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return -std::numeric_limits<double>::infinity();
    if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
    return s;
  }

  json convert(const YAML::Node& n, const std::string& path, int depth) {
    if (depth > kMaxDepth) fail(path, "nested deeper than " + std::to_string(kMaxDepth) + " levels (a recursive alias?)");
    if (++nodes > kMaxNodes) fail(path, "the document expands to more than " + std::to_string(kMaxNodes) + " values (aliases repeated too often?)");
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined: return nullptr;
      case YAML::NodeType::Scalar: return scalar(n, path);
      case YAML::NodeType::Sequence: {
        json a = json::array();
        size_t i = 0;
        for (const auto& x : n) a.push_back(convert(x, path + "[" + std::to_string(i++) + "]", depth + 1));
        return a;
      }
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) {
          if (!kv.first.IsScalar()) fail(path, "keys must be plain names");
          std::string key = kv.first.Scalar();
          std::string sub = path.empty() ? key : path + "." + key;
          if (o.contains(key)) fail(sub, "appears twice; hint: each key once (YAML would silently keep the last)");
          o[key] = convert(kv.second, sub, depth + 1);
        }
        return o;
      }
    }
    return nullptr;
  }
};

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

// Events are not needed, only whether a second document follows the first.
struct IgnoreEvents : YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Two parser steps at most: yaml-cpp's LoadAll never ends on a lone top-level ',' (it yields
// empty documents forever), so documents are counted here only as far as "more than one".
bool holds_second_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  return parser.HandleNextDocument(ignore) && parser.HandleNextDocument(ignore);
}

[[noreturn]] void fail(const Recipe& r, const std::string& key, const std::string& what) {
  throw UsageError(r.file.string() + ": " + key + ": " + what);
}

}  // namespace

nlohmann::json yaml_to_json(const std::string& text, const std::string& label) {
  try {
    YAML::Node doc = YAML::Load(text);
    if (holds_second_document(text)) {
      if (doc.IsNull()) throw UsageError(label + ": not valid YAML (no content, only a stray top-level token such as ',')");
      throw UsageError(label + ": holds more than one YAML document (separated by ---); a recipe is one document");
    }
    Converter c{label};
    return c.convert(doc, "", 0);
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

Recipe load_recipe(const std::filesystem::path& file) { return parse_recipe(read_regular_file(file), file); }

Recipe parse_recipe(const std::string& text, const std::filesystem::path& file) {
  Recipe r;
  r.file = file;
  r.text = text;
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
