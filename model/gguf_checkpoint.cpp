#include "model/gguf_checkpoint.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <regex>

#include "core/error.hpp"
#include "formats/ggml_quants.hpp"
#include "formats/gguf.hpp"
#include "formats/mapped_file.hpp"
#include "formats/tensor_source.hpp"
#include "model/gguf_arch.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Part {
  std::unique_ptr<MappedFile> map;
  GgufFile gguf;
};

// One Hugging Face tensor read out of a stored GGUF tensor (or one expert's slab of it).
class GgufView final : public TensorSource {
 public:
  GgufView(GgmlSlab slab, int64_t cols, int64_t head_dim) : slab_(std::move(slab)), cols_(cols), head_dim_(head_dim) {}

  void read_rows(const TensorInfo& t, int64_t r0, int64_t r1, std::byte* dst) const override {
    check(t, r0, r1);
    bool stored_as_is = (t.dtype == DType::kF32 && slab_.type == GgmlType::kF32) || (t.dtype == DType::kF16 && slab_.type == GgmlType::kF16) ||
                        (t.dtype == DType::kBF16 && slab_.type == GgmlType::kBF16);
    if (stored_as_is && head_dim_ == 0) return slab_.file->read(slab_.offset + static_cast<uint64_t>(r0) * slab_.row_bytes, static_cast<size_t>(r1 - r0) * slab_.row_bytes, dst);
    if (t.dtype != DType::kF32 && !stored_as_is) throw Error(ExitCode::kInternal, "GGUF view of '" + slab_.tensor + "' has a mismatched dtype");
    if (t.dtype == DType::kF32) return read_rows_f32(t, r0, r1, reinterpret_cast<float*>(dst));
    std::vector<float> f(static_cast<size_t>((r1 - r0) * cols_));  // a permuted f16/bf16 tensor: exact through float32
    read_rows_f32(t, r0, r1, f.data());
    from_f32(t.dtype, f.data(), f.size(), dst);
  }

  void read_rows_f32(const TensorInfo& t, int64_t r0, int64_t r1, float* dst) const override {
    check(t, r0, r1);
    if (head_dim_ == 0) return decode(r0, r1, dst);
    if (slab_.rows == 1) {  // a bias: its elements are in rotated-pair order
      std::vector<float> stored(static_cast<size_t>(cols_));
      decode(0, 1, stored.data());
      for (int64_t e = 0; e < cols_; ++e) dst[e] = stored[static_cast<size_t>(stored_index(e))];
      return;
    }
    for (int64_t r = r0; r < r1; ++r) decode(stored_index(r), stored_index(r) + 1, dst + (r - r0) * cols_);
  }

  const GgmlSlab* slab() const override { return &slab_; }

 private:
  // HF rotate-half row h·d + j·d/2 + i is stored row h·d + 2i + j.
  int64_t stored_index(int64_t r) const {
    int64_t h = r / head_dim_, k = r % head_dim_, half = head_dim_ / 2;
    return h * head_dim_ + 2 * (k % half) + k / half;
  }
  void check(const TensorInfo& t, int64_t r0, int64_t r1) const {
    if (r0 < 0 || r1 < r0 || r1 > slab_.rows) throw Error(ExitCode::kInternal, "tensor '" + t.name + "': row range out of bounds");
  }
  void decode(int64_t r0, int64_t r1, float* dst) const {
    thread_local std::vector<std::byte> raw;
    size_t bytes = static_cast<size_t>(r1 - r0) * slab_.row_bytes;
    if (raw.size() < bytes) raw.resize(bytes);
    slab_.file->read(slab_.offset + static_cast<uint64_t>(r0) * slab_.row_bytes, bytes, raw.data());
    decode_ggml(slab_.type, raw.data(), (r1 - r0) * cols_, dst);
  }

  GgmlSlab slab_;
  int64_t cols_, head_dim_;
};

struct Storage {
  std::vector<Part> parts;
  std::vector<std::unique_ptr<GgufView>> views;
};

// Typed metadata access: errors name the file and key.
struct Meta {
  const GgufFile& g;
  std::string file;
  bool has(const std::string& key) const { return g.find_value(key) != nullptr; }
  int64_t integer(const std::string& key) const {
    const auto* v = g.find_value(key);
    if (v == nullptr) throw FormatError(file + ": metadata key " + key + " is missing; llama.cpp needs it");
    if (!v->is_number_integer()) throw FormatError(file + ": metadata key " + key + ": expected an integer, found " + g.metadata[key]["type"].get<std::string>());
    return v->get<int64_t>();
  }
  int64_t integer_or(const std::string& key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  // A FLOAT32 as the config value it was written from: the shortest decimal that rounds to it
  // (1e-05, not 9.999999747378752e-06), so the engine computes with the config's value.
  double number_or(const std::string& key, double fallback) const {
    const auto* v = g.find_value(key);
    if (v == nullptr) return fallback;
    if (!v->is_number()) throw FormatError(file + ": metadata key " + key + ": expected a number");
    if (g.metadata[key]["type"] != "FLOAT32") return v->get<double>();
    auto f = v->get<float>();
    for (int digits = 1; digits <= 9; ++digits) {
      char text[32];
      std::snprintf(text, sizeof text, "%.*g", digits, static_cast<double>(f));
      double d = std::strtod(text, nullptr);
      if (static_cast<float>(d) == f) return d;
    }
    return f;
  }
  std::string text(const std::string& key) const {
    const auto* v = g.find_value(key);
    if (v == nullptr || !v->is_string()) throw FormatError(file + ": metadata key " + key + ": expected a STRING");
    return v->get<std::string>();
  }
};

const GgufTensor* find_stored(const std::vector<Part>& parts, const std::string& name, const Part** owner) {
  for (const auto& p : parts)
    for (const auto& t : p.gguf.tensors)
      if (t.name == name) {
        *owner = &p;
        return &t;
      }
  return nullptr;
}

std::vector<Part> open_parts(const fs::path& path) {
  std::vector<Part> parts;
  auto add = [&](const fs::path& p) {
    Part part;
    part.map = std::make_unique<MappedFile>(p);
    part.gguf = parse_gguf(part.map->bytes(), p.string());
    parts.push_back(std::move(part));
  };
  add(path);
  static const std::regex kSplit("(.*)-00001-of-([0-9]{5})\\.gguf");
  std::smatch m;
  std::string s = path.string();
  if (std::regex_match(s, m, kSplit)) {
    int n = std::stoi(m[2].str());
    for (int i = 2; i <= n; ++i) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", i, n);
      fs::path p = m[1].str() + suffix;
      if (!fs::exists(p)) throw FormatError(s + ": split file " + p.string() + " is missing (" + std::to_string(n) + " splits)");
      add(p);
    }
  }
  return parts;
}

// glm4moe's keys back into a Glm4MoeConfig; q/k biases and norms are known from the tensors.
void glm4moe_config(const Meta& m, const std::vector<Part>& parts, json& c) {
  const std::string a = "glm4moe.";
  if (m.integer_or(a + "nextn_predict_layers", 0) > 0)
    throw UnsupportedError(m.file + ": " + a + "nextn_predict_layers is " + std::to_string(m.integer(a + "nextn_predict_layers")) +
                           "; multi-token-prediction layers cannot be read (hint: convert without them, e.g. --no-mtp)");
  if (m.integer_or(a + "expert_gating_func", 2) != 2)
    throw UnsupportedError(m.file + ": " + a + "expert_gating_func is " + std::to_string(m.integer(a + "expert_gating_func")) +
                           "; GLM-4-MoE routes with a sigmoid (2)");
  c["n_routed_experts"] = c["num_experts"];
  c.erase("num_experts");
  c["n_shared_experts"] = m.integer_or(a + "expert_shared_count", 0);
  c["first_k_dense_replace"] = m.integer_or(a + "leading_dense_block_count", 0);
  c["routed_scaling_factor"] = m.number_or(a + "expert_weights_scale", 1.0);
  const auto* norm = m.g.find_value(a + "expert_weights_norm");
  c["norm_topk_prob"] = norm != nullptr && norm->is_boolean() && norm->get<bool>();
  c["n_group"] = m.integer_or(a + "expert_group_count", 1);
  c["topk_group"] = m.integer_or(a + "expert_group_used_count", 1);
  int64_t head_dim = c.contains("head_dim") ? c["head_dim"].get<int64_t>() : c["hidden_size"].get<int64_t>() / c["num_attention_heads"].get<int64_t>();
  c["head_dim"] = head_dim;
  c["partial_rotary_factor"] = static_cast<double>(m.integer_or(a + "rope.dimension_count", head_dim / 2)) / static_cast<double>(head_dim);
  const Part* owner = nullptr;
  c["attention_bias"] = find_stored(parts, "blk.0.attn_q.bias", &owner) != nullptr;
  c["use_qk_norm"] = find_stored(parts, "blk.0.attn_q_norm.weight", &owner) != nullptr;
}

json derive_config(const Meta& m, const std::vector<Part>& parts) {
  std::string arch = m.text("general.architecture");
  auto families = gguf_archs_named(arch);
  if (families.empty())
    throw UnsupportedError(m.file + ": general.architecture \"" + arch + "\" cannot be read (llama, qwen2, qwen3, qwen2moe, qwen3moe, olmoe can)");
  const std::string a = arch + ".";
  int64_t experts = m.integer_or(a + "expert_count", 0);
  std::string type = std::string(families[0]->model_type);
  if (arch == "llama" && experts > 0) type = "mixtral";
  if (arch == "deepseek2" || arch == "gpt-oss")
    throw UnsupportedError(m.file + ": reading " + arch + " GGUF files is not supported yet (llama, qwen2, qwen3, qwen2moe, qwen3moe, olmoe, glm4moe are)");
  const Part* owner = nullptr;
  const GgufTensor* embd = find_stored(parts, "token_embd.weight", &owner);
  if (embd == nullptr || embd->ne.size() != 2) throw FormatError(m.file + ": tensor 'token_embd.weight' is missing or not 2-D");
  if (find_stored(parts, "rope_freqs.weight", &owner) != nullptr)
    throw UnsupportedError(m.file + ": tensor 'rope_freqs.weight' (llama3 RoPE factors) cannot be turned back into a rope_scaling config");
  int64_t heads = m.integer(a + "attention.head_count");
  json c = {{"model_type", type},
            {"num_hidden_layers", m.integer(a + "block_count")},
            {"hidden_size", m.integer(a + "embedding_length")},
            {"num_attention_heads", heads},
            {"num_key_value_heads", m.integer_or(a + "attention.head_count_kv", heads)},
            {"vocab_size", embd->ne[1]},
            {"rms_norm_eps", m.number_or(a + "attention.layer_norm_rms_epsilon", 1e-5)},
            {"rope_theta", m.number_or(a + "rope.freq_base", 10000.0)},
            {"tie_word_embeddings", find_stored(parts, "output.weight", &owner) == nullptr},
            {"hidden_act", "silu"}};
  if (m.has(a + "context_length")) c["max_position_embeddings"] = m.integer(a + "context_length");
  if (m.has(a + "feed_forward_length")) c["intermediate_size"] = m.integer(a + "feed_forward_length");
  if (m.has(a + "attention.key_length")) c["head_dim"] = m.integer(a + "attention.key_length");
  if (m.has(a + "rope.scaling.type")) {
    std::string rs = m.text(a + "rope.scaling.type");
    if (rs != "linear" && rs != "none") throw UnsupportedError(m.file + ": " + a + "rope.scaling.type \"" + rs + "\" cannot be read (linear can)");
    if (rs == "linear") c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", m.number_or(a + "rope.scaling.factor", 1.0)}};
  }
  if (experts > 0) {
    c[type == "mixtral" ? "num_local_experts" : "num_experts"] = experts;
    c["num_experts_per_tok"] = m.integer(a + "expert_used_count");
    if (type != "mixtral" && type != "olmoe") c["moe_intermediate_size"] = m.integer(a + "expert_feed_forward_length");
    if (type == "qwen2_moe") c["shared_expert_intermediate_size"] = m.integer(a + "expert_shared_feed_forward_length");
    c["norm_topk_prob"] = type == "qwen3_moe";  // what llama.cpp hard-codes for each architecture
  }
  if (arch == "glm4moe") glm4moe_config(m, parts, c);
  for (const char* kind : {"bos", "eos"})
    if (m.has(std::string("tokenizer.ggml.") + kind + "_token_id")) c[std::string(kind) + "_token_id"] = m.integer(std::string("tokenizer.ggml.") + kind + "_token_id");
  return c;
}

}  // namespace

json gguf_hf_config(const fs::path& path) {
  auto parts = open_parts(path);
  return derive_config(Meta{parts[0].gguf, path.string()}, parts);
}

std::unique_ptr<Checkpoint> open_gguf_checkpoint(const fs::path& path) {
  auto storage = std::make_shared<Storage>();
  storage->parts = open_parts(path);
  const std::string file = path.string();
  json config = derive_config(Meta{storage->parts[0].gguf, file}, storage->parts);
  ModelConfig c = resolve_config(config, file + " (metadata)");
  const GgufArch& arch = *find_gguf_arch(c.family->model_type);
  std::vector<TensorInfo> tensors;
  std::map<std::string, bool> used;
  for (const auto& e : expected_tensors(c)) {
    auto names = gguf_names_for(arch, e.name);
    if (names.empty()) throw UnsupportedError(file + ": no GGUF name for Hugging Face tensor '" + e.name + "'");
    const GgufTensorName& n = names[0];
    std::string stored_name = gguf_name(n, e.layer);
    const Part* owner = nullptr;
    const GgufTensor* st = find_stored(storage->parts, stored_name, &owner);
    if (st == nullptr) throw FormatError(where(file, stored_name) + "missing (" + std::string(arch.arch) + " stores '" + e.name + "' there)");
    used[stored_name] = true;
    auto type = static_cast<GgmlType>(st->type);
    if (find_ggml_type(st->type) == nullptr || !can_decode_ggml(type))
      throw UnsupportedError(where(file, stored_name) + "type " + st->type_name + " cannot be read (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, MXFP4 can)");
    bool stacked = n.layout == GgufLayout::kStacked;
    if (stacked && (st->ne.size() < 2 || st->ne.back() != static_cast<uint64_t>(c.n_experts)))
      throw FormatError(where(file, stored_name) + "expected " + std::to_string(c.n_experts) + " experts in its last dimension");
    TensorInfo t;
    t.name = e.name;
    t.dtype = type == GgmlType::kF16 ? DType::kF16 : type == GgmlType::kBF16 ? DType::kBF16 : DType::kF32;
    std::vector<uint64_t> ne = st->ne;
    if (stacked) ne.pop_back();
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) t.shape.push_back(static_cast<int64_t>(*it));
    t.end = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
    GgmlSlab slab;
    slab.file = owner->map.get();
    slab.type = type;
    slab.tensor = stored_name;
    slab.row_bytes = ggml_row_bytes(type, ne[0]);
    slab.rows = t.rows();
    slab.offset = owner->gguf.data_start + st->offset + (stacked ? static_cast<uint64_t>(e.expert) * slab.row_bytes * static_cast<uint64_t>(slab.rows) : 0);
    int64_t head_dim = n.layout == GgufLayout::kRopePairs ? c.head_dim : 0;
    if (head_dim > 0) slab.layout = "rope-pairs " + std::to_string(head_dim);
    storage->views.push_back(std::make_unique<GgufView>(std::move(slab), t.cols(), head_dim));
    t.source = storage->views.back().get();
    tensors.push_back(std::move(t));
  }
  for (const auto& p : storage->parts)
    for (const auto& t : p.gguf.tensors)
      if (!used.count(t.name) && !(t.name == "output.weight" && c.tie_embeddings))
        throw UnsupportedError(where(file, t.name) + "is not part of a Hugging Face " + std::string(c.family->model_type) +
                               " model as moeforge reads it; it would be lost");
  return std::make_unique<Checkpoint>(path, config, std::move(tensors), std::shared_ptr<const void>(storage, storage.get()));
}

}  // namespace moeforge
