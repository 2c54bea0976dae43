#include "model/inspection.hpp"

#include <cstdio>
#include <map>
#include <regex>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "formats/tensor_stats.hpp"

namespace moeforge {
using ojson = nlohmann::ordered_json;

namespace {

Shape ffn_shape(Proj proj, bool bias, int64_t width, int64_t hidden) {
  if (proj == Proj::kDown) return bias ? Shape{hidden} : Shape{hidden, width};
  return bias ? Shape{width} : Shape{width, hidden};
}

Shape attention_shape(const std::string& name, const ModelConfig& c) {
  int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim, h = c.hidden;
  bool bias = name.ends_with(".bias");
  if (name.find(".q_proj.") != std::string::npos) return bias ? Shape{q} : Shape{q, h};
  if (name.find(".k_proj.") != std::string::npos || name.find(".v_proj.") != std::string::npos) return bias ? Shape{kv} : Shape{kv, h};
  if (name.find(".o_proj.") != std::string::npos) return bias ? Shape{h} : Shape{h, q};
  return {};
}

// gpt-oss fused experts: [E, H, 2I] / [E, I, H] plain, [E, rows, cols/32, 16] + [E, rows, cols/32] MXFP4.
Shape fused_expert_shape(const std::string& name, const ModelConfig& c) {
  const int64_t E = c.n_experts, H = c.hidden, I = c.expert_intermediate;
  bool gate_up = name.find(".gate_up_proj") != std::string::npos;
  int64_t rows = gate_up ? 2 * I : H, cols = gate_up ? H : I;
  if (name.ends_with("_bias")) return {E, rows};
  if (name.ends_with("_blocks")) return {E, rows, cols / 32, 16};
  if (name.ends_with("_scales")) return {E, rows, cols / 32};
  return gate_up ? Shape{E, H, 2 * I} : Shape{E, I, H};
}

std::string router_description(const ModelConfig& c) {
  switch (c.family->router) {
    case RouterKind::kNone: return "none (dense)";
    case RouterKind::kSoftmaxTopK:
      return "softmax, top-" + std::to_string(c.top_k) + (c.renormalize ? ", renormalised" : ", not renormalised");
    case RouterKind::kSigmoidGroupTopK:
      return "sigmoid + correction bias, top-" + std::to_string(c.top_k) + " within " + std::to_string(c.topk_group) + " of " +
             std::to_string(c.n_group) + " groups, scaled by " + nlohmann::json(c.routed_scaling_factor).dump();
    case RouterKind::kSelectedSoftmaxTopK:
      return "logits + bias, top-" + std::to_string(c.top_k) + ", softmax over the selected";
  }
  return "";
}

ojson dtype_histogram(const Checkpoint& ckpt) {
  std::map<std::string, std::array<uint64_t, 3>> h;  // tensors, parameters, bytes
  for (const TensorInfo* t : ckpt.tensors()) {
    auto& e = h[std::string(dtype_name(t->dtype))];
    e[0] += 1;
    e[1] += static_cast<uint64_t>(t->numel());
    e[2] += t->nbytes();
  }
  ojson out = ojson::object();
  for (const auto& [name, e] : h) out[name] = {{"tensors", e[0]}, {"parameters", e[1]}, {"bytes", e[2]}};
  return out;
}

}  // namespace

StructureReport check_structure(const Checkpoint& ckpt, const ModelConfig& c) {
  StructureReport r;
  std::set<std::string> expected_names;
  for (const auto& e : expected_tensors(c)) {
    expected_names.insert(e.name);
    const TensorInfo* t = ckpt.find_tensor(e.name);
    if (t == nullptr) {
      r.errors.push_back("missing tensor " + e.name + " (expected by the " + std::string(c.family->model_type) + " table)");
      continue;
    }
    Shape want = expected_shape(e, c);
    if (!want.empty() && want != t->shape)
      r.errors.push_back("tensor " + e.name + " has shape " + shape_string(t->shape) + ", config.json implies " + shape_string(want));
  }
  std::map<int, std::set<int>> experts_seen;
  std::map<std::pair<int, int>, Shape> first_expert_shape;  // (layer, pattern index) → shape
  for (const TensorInfo* t : ckpt.tensors()) {
    auto cls = classify_tensor(*c.family, t->name);
    if (cls && cls->expert >= 0) experts_seen[cls->layer].insert(cls->expert);
    if (cls && cls->pattern->role == Role::kFusedExpert && !t->shape.empty())
      for (int64_t e = 0; e < t->shape[0]; ++e) experts_seen[cls->layer].insert(static_cast<int>(e));
    if (!expected_names.count(t->name)) {
      // A tensor of the family beyond the configured layers or experts means config.json
      // understates the model: writing from it would silently drop weights.
      bool beyond = cls && (cls->layer >= c.n_layers || (cls->expert >= 0 && cls->expert >= c.n_experts));
      (beyond ? r.errors : r.warnings)
          .push_back("extra tensor " + t->name + (beyond ? " (beyond the " + std::to_string(c.n_layers) + " layers / " + std::to_string(c.n_experts) +
                                                              " experts config.json declares)"
                                                         : " (not in the " + std::string(c.family->model_type) + " table for this config)"));
    }
    if (cls && cls->expert >= 0) {
      auto key = std::make_pair(cls->layer, static_cast<int>(cls->pattern - c.family->tensors.data()));
      auto [it, inserted] = first_expert_shape.emplace(key, t->shape);
      if (!inserted && it->second != t->shape)
        r.errors.push_back("expert shapes disagree in layer " + std::to_string(cls->layer) + ": " + t->name + " is " +
                           shape_string(t->shape) + ", expert 0's is " + shape_string(it->second));
    }
  }
  for (int l = 0; l < c.n_layers; ++l)
    if (c.is_moe_layer(l)) r.experts_per_layer.push_back(static_cast<int>(experts_seen[l].size()));
  return r;
}

void require_consistent_structure(const Checkpoint& ckpt, const ModelConfig& c) {
  StructureReport r = check_structure(ckpt, c);
  if (r.errors.empty()) return;
  std::string more = r.errors.size() > 1 ? " (and " + std::to_string(r.errors.size() - 1) + " more problems)" : "";
  throw MismatchError(ckpt.label() + ": config.json and the tensors disagree: " + r.errors.front() + more +
                      "; nothing written. hint: `moeforge inspect` lists every problem");
}

namespace {

ojson tensor_list(const std::vector<const TensorInfo*>& tensors, const Checkpoint& ckpt, const InspectOptions& o) {
  std::vector<TensorStats> stats;
  if (o.stats) stats = compute_stats(tensors, o.threads);
  ojson list = ojson::array();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = *tensors[i];
    ojson e = {{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
               {"shard", t.file ? std::filesystem::path(t.file->path()).filename().string() : std::string("(planned)")}, {"bytes", t.nbytes()}};
    if (o.stats) e["stats"] = stats[i].to_json();
    list.push_back(std::move(e));
  }
  return list;
}

std::vector<const TensorInfo*> selected_tensors(const Checkpoint& ckpt, const std::string& filter) {
  if (filter.empty()) return ckpt.tensors();
  std::regex re;
  try {
    re = std::regex(filter);
  } catch (const std::regex_error& e) {
    throw UsageError("--filter \"" + filter + "\": not a valid regular expression (" + e.what() + ")");
  }
  std::vector<const TensorInfo*> out;
  for (const TensorInfo* t : ckpt.tensors())
    if (std::regex_search(t->name, re)) out.push_back(t);
  return out;
}

}  // namespace

Shape expected_shape(const ExpectedTensor& e, const ModelConfig& c) {
  if (c.family->attention == AttentionKind::kMla && e.pattern->role == Role::kAttention) return {};
  bool bias = e.name.ends_with(".bias");
  switch (e.pattern->role) {
    case Role::kEmbedding:
    case Role::kLmHead: return {c.vocab, c.hidden};
    case Role::kFinalNorm:
    case Role::kAttnNorm:
    case Role::kFfnNorm: return {c.hidden};
    case Role::kAttention: return attention_shape(e.name, c);
    case Role::kQkNorm:
      if (c.qk_norm == QkNormKind::kPerHead) return {c.head_dim};
      return {(e.name.find("q_norm") != std::string::npos ? c.n_heads : c.n_kv_heads) * c.head_dim};
    case Role::kFfn: return ffn_shape(e.pattern->proj, bias, c.intermediate, c.hidden);
    case Role::kExpert: return ffn_shape(e.pattern->proj, bias, c.expert_intermediate, c.hidden);
    case Role::kSharedExpert: return ffn_shape(e.pattern->proj, bias, c.shared_intermediate, c.hidden);
    case Role::kRouter: return {c.n_experts, c.hidden};
    case Role::kRouterBias: return {c.n_experts};
    case Role::kSharedExpertGate: return {1, c.hidden};
    case Role::kFusedExpert: return fused_expert_shape(e.name, c);
  }
  return {};
}

ParameterCount count_parameters(const Checkpoint& ckpt, const ModelConfig* c) {
  ParameterCount p;
  std::map<int, std::map<int, uint64_t>> expert_params;  // layer → expert → parameters
  for (const TensorInfo* t : ckpt.tensors()) {
    p.total += static_cast<uint64_t>(t->numel());
    if (c == nullptr) continue;
    auto cls = classify_tensor(*c->family, t->name);
    if (cls && cls->expert >= 0) expert_params[cls->layer][cls->expert] += static_cast<uint64_t>(t->numel());
    if (cls && cls->pattern->role == Role::kFusedExpert && !t->shape.empty() && t->shape[0] > 0) {
      // MXFP4: a block byte holds two weights, scales are not weights of their own.
      uint64_t n = t->name.ends_with("_blocks") ? 2 * static_cast<uint64_t>(t->numel()) : t->name.ends_with("_scales") ? 0 : static_cast<uint64_t>(t->numel());
      p.total += n - static_cast<uint64_t>(t->numel());
      for (int64_t e = 0; e < t->shape[0]; ++e) expert_params[cls->layer][static_cast<int>(e)] += n / static_cast<uint64_t>(t->shape[0]);
    }
  }
  p.active = p.total;
  for (const auto& [layer, experts] : expert_params) {
    uint64_t sum = 0;
    for (const auto& [e, n] : experts) sum += n;
    uint64_t used = std::min<uint64_t>(static_cast<uint64_t>(c->top_k), experts.size());
    p.active -= sum - used * sum / experts.size();
  }
  return p;
}

ojson inspect_checkpoint(const Checkpoint& ckpt, const InspectOptions& o) {
  ojson r;
  r["path"] = ckpt.label();
  r["format"] = "safetensors";
  r["layout"] = ckpt.layout_name();
  ojson shards = ojson::array();
  for (const auto& s : ckpt.shards())
    shards.push_back({{"file", std::filesystem::path(s->path()).filename().string()}, {"bytes", s->file_size()},
                      {"tensors", s->tensors().size()}});
  r["shards"] = shards;
  r["bytes_on_disk"] = ckpt.bytes_on_disk();
  std::vector<std::string> warnings;
  std::optional<ModelConfig> config;
  if (!ckpt.has_config()) {
    warnings.push_back("no config.json: architecture and sizes unknown");
  } else {
    const auto& raw = ckpt.config();
    r["model_type"] = raw.value("model_type", "");
    r["architectures"] = raw.contains("architectures") ? ojson(raw["architectures"]) : ojson::array();
    if (family_for_config(raw) == nullptr) {
      warnings.push_back("unsupported architecture " + raw.value("model_type", std::string("(none)")) + ": sizes and roles not checked");
    } else {
      config = resolve_config(raw, ckpt.config_path().string());
    }
  }
  if (config) {
    const ModelConfig& c = *config;
    StructureReport structure = check_structure(ckpt, c);
    warnings.insert(warnings.end(), structure.errors.begin(), structure.errors.end());
    warnings.insert(warnings.end(), structure.warnings.begin(), structure.warnings.end());
    const std::vector<int>& experts_per_layer = structure.experts_per_layer;
    r["family"] = c.family->model_type;
    r["moe"] = c.is_moe();
    r["layers"] = c.n_layers;
    r["hidden_size"] = c.hidden;
    r["vocab_size"] = c.vocab;
    r["attention_heads"] = c.n_heads;
    r["kv_heads"] = c.n_kv_heads;
    r["head_dim"] = c.head_dim;
    r["intermediate_size"] = c.intermediate;
    r["tie_word_embeddings"] = c.tie_embeddings;
    r["rms_norm_eps"] = c.rms_norm_eps;
    r["rope_theta"] = c.rope_theta;
    if (c.is_moe()) {
      r["moe_layers"] = c.n_moe_layers();
      r["experts_per_layer"] = experts_per_layer;
      r["experts"] = c.n_experts;
      r["experts_per_token"] = c.top_k;
      r["expert_intermediate_size"] = c.expert_intermediate;
      bool has_shared = c.shared_intermediate > 0;
      r["shared_experts"] = !has_shared ? 0 : c.family->router == RouterKind::kSigmoidGroupTopK ? config_int_or(c.raw, "n_shared_experts", 1) : 1;
      r["expert_layout"] = find_pattern(*c.family, Role::kFusedExpert, Proj::kGateUp) == nullptr
                               ? (ckpt.expert_layout() == ExpertLayout::kFused ? "fused (transformers v5)" : "per-expert")
                           : c.mxfp4_experts                                    ? "fused (gpt-oss), MXFP4 blocks and scales"
                                                                                : "fused (gpt-oss, gate/up interleaved)";
      r["shared_expert_intermediate_size"] = c.shared_intermediate;
      for (int n : experts_per_layer)
        if (n != c.n_experts)
          warnings.push_back("a MoE layer stores " + std::to_string(n) + " experts, config says " + std::to_string(c.n_experts));
    }
    r["router"] = router_description(c);
  }
  ParameterCount p = count_parameters(ckpt, config ? &*config : nullptr);
  r["parameters"] = {{"total", p.total}, {"active_per_token", p.active}};
  r["dtypes"] = dtype_histogram(ckpt);
  r["tensor_count"] = ckpt.tensors().size();
  if (o.tensors || o.stats || !o.filter.empty()) r["tensors"] = tensor_list(selected_tensors(ckpt, o.filter), ckpt, o);
  r["warnings"] = warnings;
  return r;
}

ojson inspect_gguf(const GgufFile& g, const std::string& path, const InspectOptions& o) {
  ojson r;
  r["path"] = path;
  r["format"] = "gguf";
  r["gguf_version"] = g.version;
  r["bytes_on_disk"] = g.file_size;
  r["alignment"] = g.alignment;
  r["data_start"] = g.data_start;
  std::string arch;
  if (const auto* a = g.find_value("general.architecture"); a && a->is_string()) arch = a->get<std::string>();
  r["architecture"] = arch;
  auto arch_value = [&](const std::string& key) -> ojson {
    const auto* v = g.find_value(arch + "." + key);
    return v ? *v : ojson(nullptr);
  };
  r["layers"] = arch_value("block_count");
  r["hidden_size"] = arch_value("embedding_length");
  r["experts"] = arch_value("expert_count");
  r["experts_per_token"] = arch_value("expert_used_count");
  uint64_t total = 0;
  std::map<std::string, uint64_t> types;
  for (const auto& t : g.tensors) {
    total += t.numel();
    types[t.type_name] += 1;
  }
  r["parameters"] = {{"total", total}};
  r["tensor_types"] = types;
  r["tensor_count"] = g.tensors.size();
  ojson meta = ojson::object();
  for (const auto& [key, entry] : g.metadata.items()) {
    if (entry["type"] == "ARRAY") {
      const auto& values = entry["value"];
      ojson head = ojson::array();
      for (size_t i = 0; i < values.size() && i < 8; ++i) head.push_back(values[i]);
      meta[key] = {{"type", "ARRAY"}, {"elem_type", entry["elem_type"]}, {"count", values.size()}, {"first", head}};
    } else {
      meta[key] = entry;
    }
  }
  r["metadata"] = meta;
  if (o.tensors || !o.filter.empty()) {
    std::regex re(o.filter.empty() ? std::string(".*") : o.filter);
    ojson list = ojson::array();
    for (const auto& t : g.tensors)
      if (std::regex_search(t.name, re))
        list.push_back({{"name", t.name}, {"type", t.type_name}, {"shape", t.shape()}, {"offset", g.data_start + t.offset}, {"bytes", t.nbytes}});
    r["tensors"] = list;
  }
  r["warnings"] = ojson::array();
  return r;
}

}  // namespace moeforge
