#include "recipes/mergekit_config.hpp"

#include <climits>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/output_safety.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Context {
  const Recipe& r;
  fs::path dir;      // the recipe's folder, for relative paths
  bool write_files;  // false: validate only
  [[noreturn]] void fail(const std::string& key, const std::string& what) const { throw UsageError(r.file.string() + ": " + key + ": " + what); }
};

// Typed reads of optional keys: a wrong type is an error naming the key path, never a JSON library message.
double number_or(const Context& c, const json& e, const std::string& key, const std::string& where, double fallback) {
  if (!e.contains(key) || e[key].is_null()) return fallback;
  if (!e[key].is_number()) c.fail(where + key, "must be a number, found " + e[key].dump());
  double d = e[key].get<double>();
  if (!std::isfinite(d)) c.fail(where + key, "must be finite, found " + e[key].dump());
  return d;
}

std::string string_or(const Context& c, const json& e, const std::string& key, const std::string& where, const std::string& fallback) {
  if (!e.contains(key) || e[key].is_null()) return fallback;
  if (!e[key].is_string()) c.fail(where + key, "must be a string, found " + e[key].dump());
  return e[key].get<std::string>();
}

std::string local_model(const Context& c, const json& v, const std::string& key) {
  if (!v.is_string()) c.fail(key, "expected a model path, found " + v.dump());
  std::string s = v;
  fs::path p = fs::path(s).is_absolute() ? fs::path(s) : c.dir / s;
  if (!fs::exists(p))
    c.fail(key, "\"" + s + "\" is not a local model directory (" + p.string() +
                    "); moeforge reads local checkpoints only: download Hugging Face models first");
  return fs::weakly_canonical(p).string();
}

std::vector<std::string> strings(const Context& c, const json& e, const std::string& key, const std::string& where) {
  if (!e.contains(key) || e[key].is_null()) return {};
  if (!e[key].is_array()) c.fail(where + "." + key, "expected a list of strings");
  std::vector<std::string> out;
  for (const auto& s : e[key]) {
    if (!s.is_string()) c.fail(where + "." + key, "expected a list of strings, found " + s.dump());
    out.push_back(s);
  }
  return out;
}

// The prompts of one expert as token-id lists: explicit ids, or text through the tokenizer.
std::vector<std::vector<int32_t>> prompt_ids(const Context& c, const json& e, const std::string& where, const std::string& kind,
                                             const fs::path& base, const PromptTokenizer& tokenize) {
  std::vector<std::vector<int32_t>> out;
  std::string ids_key = kind + "_token_ids", text_key = kind + "_prompts";
  if (e.contains(ids_key)) {
    if (!e[ids_key].is_array()) c.fail(where + "." + ids_key, "expected a list of token-id lists");
    for (const auto& p : e[ids_key]) {
      if (!p.is_array() || p.empty()) c.fail(where + "." + ids_key, "every prompt is a non-empty list of token ids");
      std::vector<int32_t> ids;
      for (const auto& id : p) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
          c.fail(where + "." + ids_key, "token ids must be integers in [0, 2^31), found " + id.dump());
        ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
      out.push_back(ids);
    }
  }
  auto texts = strings(c, e, text_key, where);
  for (size_t k = 0; k < texts.size(); ++k) {
    const std::string& text = texts[k];
    if (text.empty()) c.fail(where + "." + text_key + "[" + std::to_string(k) + "]", "is empty; hint: remove it or write the prompt");
    if (!tokenize) c.fail(where + "." + text_key, "text prompts need a tokenizer; give " + ids_key + " instead");
    try {
      out.push_back(tokenize(base, text));
    } catch (const Error& e) {
      c.fail(where + "." + text_key, e.what());
    }
  }
  return out;
}

std::string write_prompts(const Context& c, const fs::path& file, const std::vector<std::vector<int32_t>>& prompts) {
  std::string text;
  for (const auto& p : prompts) text += json{{"input_ids", p}}.dump() + "\n";
  if (c.write_files) write_file_atomically(file, text, false);
  return file.string();
}

std::string output_arch(const Context& c, const json& body, bool shared) {
  if (!body.contains("architecture") || body["architecture"].is_null()) return shared ? "qwen2_moe" : "";
  std::string a = string_or(c, body, "architecture", "", "");
  for (auto& ch : a) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (a == "qwen2_moe" || a == "qwen3_moe") return a;  // moeforge's own names
  // mergekit matches a case-insensitive prefix of its display names.
  if (std::string("mixtral").rfind(a, 0) == 0) return "mixtral";
  if (std::string("qwen3 moe").rfind(a, 0) == 0 && a.size() > 4) return "qwen3_moe";
  if (std::string("qwen moe").rfind(a, 0) == 0) return shared ? "qwen2_moe" : "qwen3_moe";
  if (std::string("deepseek moe").rfind(a, 0) == 0) c.fail("architecture", "DeepSeek MoE output (remote-code deepseek-moe-16b) is not written by moeforge");
  c.fail("architecture", "\"" + body["architecture"].get<std::string>() + "\" matches no output architecture (mixtral, qwen, qwen3)");
}

}  // namespace

MergekitTranslation translate_mergekit(const Recipe& r, const fs::path& work_dir, bool write_files, const PromptTokenizer& tokenize) {
  Context c{r, fs::absolute(r.file).parent_path(), write_files};
  const json& b = r.body;
  MergekitTranslation t;
  static const std::set<std::string> kKnown = {"base_model", "experts", "gate_mode", "dtype", "experts_per_token", "shared_experts",
                                               "architecture", "shared_weights", "output", "description"};
  for (const auto& [key, v] : b.items())
    if (!kKnown.count(key)) t.warnings.push_back(r.file.string() + ": " + key + ": not a mergekit-moe key; ignored as mergekit-moe does");
  if (!b.contains("base_model")) c.fail("base_model", "required");
  if (!b.contains("experts") || !b["experts"].is_array() || b["experts"].empty()) c.fail("experts", "expected a non-empty list of experts");
  std::string base = local_model(c, b["base_model"], "base_model");
  std::string gate = string_or(c, b, "gate_mode", "", "hidden");
  int64_t k = 2;
  if (b.contains("experts_per_token") && !b["experts_per_token"].is_null()) {
    if (!b["experts_per_token"].is_number_integer()) c.fail("experts_per_token", "must be an integer, found " + b["experts_per_token"].dump());
    k = b["experts_per_token"].get<int64_t>();
  }
  if (k < 1) c.fail("experts_per_token", "must be at least 1");
  if (static_cast<int64_t>(b["experts"].size()) < k)
    c.fail("experts", std::to_string(b["experts"].size()) + " experts cannot serve experts_per_token " + std::to_string(k));
  static const std::map<std::string, std::string> kGate = {{"hidden", "mergekit-hidden"}, {"hidden_last", "mergekit-hidden"},
                                                           {"cheap_embed", "cheap-embed"}, {"random", "random"},
                                                           {"uniform_random", "uniform-random"}};
  if (gate == "hidden_avg") c.fail("gate_mode", "hidden_avg (average over padded positions) is not supported; use hidden");
  if (!kGate.count(gate)) c.fail("gate_mode", "\"" + gate + "\": expected hidden, cheap_embed, random or uniform_random");
  const bool prompted = gate != "random" && gate != "uniform_random";

  json o = {{"base", base}, {"router", kGate.at(gate)}, {"experts-per-token", k}, {"seq-len", 1 << 20}};
  std::string shared_weights = string_or(c, b, "shared_weights", "", "base");
  if (shared_weights != "base" && shared_weights != "average") c.fail("shared_weights", "expected base (mergekit) or average (BTX)");
  o["shared"] = shared_weights == "base" ? "base" : "uniform";
  if (gate == "random") o["router-std"] = 1.0;  // mergekit draws randn without scaling
  if (b.contains("dtype") && !b["dtype"].is_null()) {
    static const std::map<std::string, std::string> kDtypes = {{"bfloat16", "bf16"}, {"float16", "f16"}, {"float32", "f32"}, {"float64", "f64"}};
    std::string d = string_or(c, b, "dtype", "", "");
    if (d.rfind("torch.", 0) == 0) d = d.substr(6);
    if (!kDtypes.count(d)) c.fail("dtype", "\"" + d + "\": expected bfloat16, float16 or float32");
    o["dtype"] = kDtypes.at(d);
  }
  json experts = json::array(), noise = json::array(), scale = json::array(), positive = json::array(), negative = json::array();
  bool any_negative = false, any_noise = false, any_scale = false;
  std::vector<std::vector<std::vector<int32_t>>> negatives;
  std::set<std::vector<std::vector<int32_t>>> distinct;
  for (size_t i = 0; i < b["experts"].size(); ++i) {
    const json& e = b["experts"][i];
    std::string where = "experts[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("source_model")) c.fail(where, "expected a mapping with source_model");
    experts.push_back(local_model(c, e["source_model"], where + ".source_model"));
    double n = number_or(c, e, "noise_scale", where + ".", 0.0), sc = number_or(c, e, "residual_scale", where + ".", 1.0);
    if (n < 0) c.fail(where + ".noise_scale", "must be >= 0");
    noise.push_back(n);
    scale.push_back(sc);
    any_noise = any_noise || n != 0.0;
    any_scale = any_scale || sc != 1.0;
    if (!prompted) continue;
    auto pos = prompt_ids(c, e, where, "positive", base, tokenize);
    if (pos.empty()) c.fail(where + ".positive_prompts", "required for gate_mode " + gate);
    distinct.insert(pos);
    positive.push_back(write_prompts(c, work_dir / ("positive-" + std::to_string(i) + ".jsonl"), pos));
    negatives.push_back(prompt_ids(c, e, where, "negative", base, tokenize));
    any_negative = any_negative || !negatives.back().empty();
  }
  if (prompted && b["experts"].size() > 1 && distinct.size() == 1)
    c.fail("experts", "every expert has the same prompts, so their routers would be identical");
  if (any_negative)
    for (size_t i = 0; i < negatives.size(); ++i)  // an empty file means "no negatives for this expert"
      negative.push_back(write_prompts(c, work_dir / ("negative-" + std::to_string(i) + ".jsonl"), negatives[i]));
  bool shared = false;
  if (b.contains("shared_experts") && !b["shared_experts"].is_null()) {
    if (!b["shared_experts"].is_array() || b["shared_experts"].size() > 1) c.fail("shared_experts", "at most one shared expert");
    if (b["shared_experts"].size() == 1) {
      const json& s = b["shared_experts"][0];
      if (!s.is_object() || !s.contains("source_model")) c.fail("shared_experts[0]", "expected a mapping with source_model");
      if (number_or(c, s, "noise_scale", "shared_experts[0].", 0.0) != 0.0 || number_or(c, s, "residual_scale", "shared_experts[0].", 1.0) != 1.0)
        c.fail("shared_experts[0]", "noise_scale and residual_scale on the shared expert are not supported");
      o["shared-expert"] = local_model(c, s["source_model"], "shared_experts[0].source_model");
      shared = true;
      auto pos = prompted ? prompt_ids(c, s, "shared_experts[0]", "positive", base, tokenize) : std::vector<std::vector<int32_t>>{};
      if (!pos.empty()) {
        o["shared-gate"] = "router";
        positive.push_back(write_prompts(c, work_dir / "positive-shared.jsonl", pos));
        if (any_negative) negative.push_back(write_prompts(c, work_dir / "negative-shared.jsonl", {}));
      }
    }
  }
  o["expert"] = experts;
  if (any_noise) o["expert-noise"] = noise;
  if (any_scale) o["expert-down-scale"] = scale;
  if (prompted) o["router-data"] = positive;
  if (any_negative) o["negative-data"] = negative;
  std::string arch = output_arch(c, b, shared);
  if (!arch.empty()) o["output-arch"] = arch;
  t.step = {"compose", o, "(mergekit-moe config)"};
  return t;
}

}  // namespace moeforge
