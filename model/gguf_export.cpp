#include "model/gguf_export.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "core/error.hpp"
#include "core/log.hpp"
#include "formats/ggml_quants.hpp"
#include "formats/mapped_file.hpp"
#include "formats/tensor_reader.hpp"
#include "formats/tensor_source.hpp"
#include "model/gguf_arch.hpp"
#include "model/gguf_gpt_oss.hpp"
#include "model/gguf_types.hpp"

namespace moeforge {
namespace {

using ojson = nlohmann::ordered_json;

struct Member {
  const OutputTensor* t;
  int expert = -1;
};

// One GGUF tensor and the Hugging Face tensors it is made of.
struct Target {
  std::string name;
  GgufLayout layout = GgufLayout::kPlain;
  int layer = -1;
  std::vector<Member> members;  // stacked: one per expert, in expert order
  std::vector<float> constant;  // a generated tensor (rope_freqs)
};

int64_t rows_of(const OutputTensor& t) { return t.shape.size() < 2 ? 1 : t.shape[0]; }
int64_t cols_of(const OutputTensor& t) { return t.shape.empty() ? 1 : shape_numel(t.shape) / std::max<int64_t>(1, rows_of(t)); }

// Rows [a, b) of an output tensor as float32, through its producer (slot 2 holds its raw bytes).
// A producer that must run whole is run whole, and `dst` then holds every row.
const float* fetch_f32(const OutputTensor& t, int64_t a, int64_t b, float* dst) {
  if (t.whole) a = 0, b = rows_of(t);
  size_t n = static_cast<size_t>((b - a) * cols_of(t));
  if (t.dtype == DType::kF32) {
    t.produce(a, b, reinterpret_cast<std::byte*>(dst));
  } else {
    auto* raw = reinterpret_cast<std::byte*>(thread_scratch((n * dtype_size(t.dtype) + 3) / 4, 2));
    t.produce(a, b, raw);
    to_f32(t.dtype, raw, n, dst);
  }
  return dst;
}

const GgmlSlab* slab_of(const OutputTensor& t) {
  return t.copy_of != nullptr && t.copy_of->source != nullptr ? t.copy_of->source->slab() : nullptr;
}

std::vector<uint64_t> reversed(const Shape& s) {
  std::vector<uint64_t> ne(s.rbegin(), s.rend());
  if (ne.empty()) ne.push_back(1);
  return ne;
}

bool is_gpt_oss_layout(GgufLayout l) { return l == GgufLayout::kOssGate || l == GgufLayout::kOssUp || l == GgufLayout::kOssDown; }

OssSource oss_source(const Target& t) {
  std::vector<const OutputTensor*> members;
  for (const auto& m : t.members) members.push_back(m.t);
  return gpt_oss_source(members, t.name);
}

std::string expected_layout(const Target& t, const ModelConfig& c) {
  return t.layout == GgufLayout::kRopePairs ? "rope-pairs " + std::to_string(c.head_dim) : "";
}

class Exporter {
 public:
  Exporter(const Plan& plan, const GgufExportOptions& o) : plan_(plan), o_(o) {
    if (plan.config.is_null()) throw Error(ExitCode::kInternal, "a GGUF needs the output config");
    c_ = resolve_config(plan.config, "the output config");
    arch_ = find_gguf_arch(c_.family->model_type);
    if (arch_ == nullptr)
      throw UnsupportedError("GGUF output for " + std::string(c_.family->model_type) + " is not supported (" + supported_gguf_families() + " are)");
  }

  GgufPlan run() {
    GgufPlan g;
    std::vector<std::string> warnings;
    check_gguf_representable(*arch_, c_, &warnings);
    for (const auto& w : warnings) {
      warn(w);
      g.notes.push_back(w);
    }
    collect(&g.notes);
    check_expert_counts();
    std::map<GgmlType, uint64_t> bytes;
    auto targets = ordered();
    for (const auto& t : targets) n_attn_v_ += t.name.find(".attn_v.weight") != std::string::npos;
    for (const Target& t : targets) {
      g.tensors.push_back(make_tensor(t));
      bytes[g.tensors.back().type] += g.tensors.back().nbytes();
    }
    auto common = std::max_element(bytes.begin(), bytes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    // Any MXFP4 tensor makes the file MOSTLY_MXFP4_MOE, as the converter labels gpt-oss.
    bool mxfp4 = bytes.count(GgmlType::kMXFP4) > 0;
    uint32_t ftype = o_.file_type.value_or(mxfp4 ? gguf_file_type(GgmlType::kMXFP4, GgmlType::kMXFP4) : gguf_file_type(o_.type, common->first));
    g.metadata = gguf_model_metadata(*arch_, c_, o_.name, ftype);
    for (const auto& [key, e] : o_.vocabulary.items()) g.metadata[key] = e;
    if (!plan_.provenance.empty()) g.metadata["moeforge.provenance"] = {{"type", "STRING"}, {"value", plan_.provenance.dump()}};
    g.inputs = plan_.inputs;
    g.extra_files = plan_.extra_files;
    return g;
  }

 private:
  // Multi-token-prediction layers (model.layers.N with N >= num_hidden_layers, GLM-4.5 and
  // DeepSeek-V3 checkpoints) are left out, as the converter does for deepseek2 and with --no-mtp.
  bool is_mtp_layer(const std::string& name) const {
    int layer = -1;
    return std::sscanf(name.c_str(), "model.layers.%d.", &layer) == 1 && layer >= c_.n_layers;
  }

  void collect(std::vector<std::string>* notes) {
    std::map<std::string, size_t> index;
    size_t mtp = 0;
    for (const auto& t : plan_.tensors) {
      if ((arch_->arch == "glm4moe" || arch_->arch == "deepseek2") && is_mtp_layer(t.name)) {
        ++mtp;
        continue;
      }
      auto names = gguf_names_for(*arch_, t.name);
      if (names.empty())
        throw UnsupportedError("tensor '" + t.name + "' has no GGUF name for llama.cpp's " + std::string(arch_->arch) + " architecture");
      for (const auto& n : names) {
        int layer = -1, expert = -1;
        match_pattern(n.hf, t.name, &layer, &expert);
        std::string name = gguf_name(n, layer);
        auto [it, fresh] = index.emplace(name, targets_.size());
        if (fresh) targets_.push_back({name, n.layout, layer, {}, {}});
        targets_[it->second].members.push_back({&t, expert});
      }
    }
    for (auto& t : targets_)
      std::sort(t.members.begin(), t.members.end(), [](const Member& a, const Member& b) { return a.expert < b.expert; });
    if (mtp > 0) {
      std::string w = std::to_string(mtp) + " tensors of multi-token-prediction layers (model.layers." + std::to_string(c_.n_layers) +
                      " and above) are not written: llama.cpp runs the model without them";
      warn(w);
      notes->push_back(w);
    }
    bool has_output = index.count("output.weight") > 0;
    if (!has_output && arch_->output_required && index.count("token_embd.weight"))
      targets_.push_back({"output.weight", GgufLayout::kPlain, -1, targets_[index["token_embd.weight"]].members, {}});
    if (auto factors = llama3_rope_factors(c_)) targets_.push_back({"rope_freqs.weight", GgufLayout::kPlain, -1, {}, *factors});
  }

  // llama.cpp holds one expert count for all layers: uneven layers are refused with the counts.
  void check_expert_counts() const {
    std::map<int, size_t> counts;
    for (const auto& t : targets_)
      if (t.layout == GgufLayout::kStacked && t.name.ends_with("ffn_gate_exps.weight")) counts[t.layer] = t.members.size();
    bool uneven = false;
    for (const auto& [layer, n] : counts) uneven |= static_cast<int>(n) != c_.n_experts;
    for (const auto& t : targets_)
      if (t.layout == GgufLayout::kStacked)
        for (size_t e = 0; e < t.members.size(); ++e) uneven |= t.members[e].expert != static_cast<int>(e);
    if (!uneven) return;
    std::string list;
    for (const auto& [layer, n] : counts) list += (list.empty() ? "" : ", ") + ("layer " + std::to_string(layer) + ": " + std::to_string(n));
    throw UsageError("GGUF holds one expert count for every layer (" + std::string(arch_->arch) + ".expert_count = " +
                     std::to_string(c_.n_experts) + "), but the experts per layer are " + list +
                     "; hint: keep the same number of experts in every layer");
  }

  std::vector<Target> ordered() const {
    auto rank = [](const Target& t) -> int64_t {
      if (t.name == "rope_freqs.weight") return -3;
      if (t.name == "token_embd.weight") return -2;
      if (t.layer >= 0) return t.layer;
      return t.name == "output.weight" ? (int64_t{1} << 40) + 1 : int64_t{1} << 40;
    };
    std::vector<Target> out = targets_;
    std::stable_sort(out.begin(), out.end(), [&](const Target& a, const Target& b) { return rank(a) < rank(b); });
    return out;
  }

  std::vector<uint64_t> ne_of(const Target& t) const {
    if (!t.constant.empty()) return {t.constant.size()};
    const OutputTensor& m = *t.members[0].t;
    switch (t.layout) {
      case GgufLayout::kStacked: {
        auto ne = reversed(m.shape);
        ne.push_back(t.members.size());
        return ne;
      }
      case GgufLayout::kKvbK: return {static_cast<uint64_t>(c_.qk_nope_head_dim), static_cast<uint64_t>(c_.kv_lora_rank), static_cast<uint64_t>(c_.n_heads)};
      case GgufLayout::kKvbV: return {static_cast<uint64_t>(c_.kv_lora_rank), static_cast<uint64_t>(c_.v_head_dim), static_cast<uint64_t>(c_.n_heads)};
      case GgufLayout::kOssGate: case GgufLayout::kOssUp: case GgufLayout::kOssDown: return gpt_oss_ne(t.layout, oss_source(t));
      default: return reversed(m.shape);
    }
  }

  GgmlType kept_type(const Target& t) const {
    for (const auto& m : t.members)
      if (const GgmlSlab* s = slab_of(*m.t)) return s->type;
    if (t.constant.size()) return GgmlType::kF32;
    switch (t.members[0].t->dtype) {
      case DType::kF16: return GgmlType::kF16;
      case DType::kBF16: return GgmlType::kBF16;
      case DType::kF32: case DType::kF64: return GgmlType::kF32;
      default: throw UnsupportedError("tensor '" + t.members[0].t->name + "' is " + std::string(dtype_name(t.members[0].t->dtype)) + "; GGUF output takes float tensors");
    }
  }

  bool raw_copy(const Target& t, GgmlType type, uint64_t row_bytes) const {
    if (t.members.empty() || (t.layout != GgufLayout::kPlain && t.layout != GgufLayout::kStacked && t.layout != GgufLayout::kRopePairs)) return false;
    for (const auto& m : t.members) {
      const GgmlSlab* s = slab_of(*m.t);
      if (s == nullptr || s->type != type || s->layout != expected_layout(t, c_) || s->row_bytes != row_bytes || s->rows != rows_of(*m.t)) return false;
    }
    return true;
  }

  GgufTensorPlan make_tensor(const Target& t) const {
    GgufTensorPlan p;
    p.name = t.name;
    p.ne = ne_of(t);
    bool is_output = t.name == "output.weight" ||
                     (t.name == "token_embd.weight" && std::none_of(targets_.begin(), targets_.end(), [](const Target& x) { return x.name == "output.weight"; }));
    int attn_v_index = -1;
    if (t.name.find(".attn_v.weight") != std::string::npos) attn_v_index = attn_v_seen_++;
    GgufTypeContext ctx{c_.n_layers, c_.n_experts, n_attn_v_};
    if (is_gpt_oss_layout(t.layout)) {
      // MXFP4 experts stay MXFP4 whatever --dtype says, as the converter keeps them.
      OssSource s = oss_source(t);
      p.type = s.mxfp4() ? GgmlType::kMXFP4 : o_.type ? gguf_tensor_type(t.name, p.ne, *o_.type, is_output, ctx, -1) : kept_type(t);
      p.row_align = gpt_oss_rows_per_expert(p.ne);
      p.work_row_bytes = p.ne[0] * 12;
      const char* part = t.layout == GgufLayout::kOssGate ? " (even rows: gate" : t.layout == GgufLayout::kOssUp ? " (odd rows: up" : " (down";
      p.source = s.values->source + part + (s.mxfp4() ? ", MXFP4 blocks repacked)" : p.ne.size() == 3 ? ", transposed)" : ")");
      p.produce = gpt_oss_producer(t.layout, s, p.type, p.ne);
      return p;
    }
    p.type = o_.type ? gguf_tensor_type(t.name, p.ne, *o_.type, is_output, ctx, attn_v_index)
                     : gguf_stays_f32(t.name, p.ne) ? GgmlType::kF32 : kept_type(t);
    if (!t.constant.empty()) {
      std::vector<float> values = t.constant;
      p.produce = [values](int64_t, int64_t, std::byte* out) { std::memcpy(out, values.data(), values.size() * 4); };
      p.source = "generated (llama3 RoPE factors)";
      return p;
    }
    const uint64_t ne0 = p.ne[0];
    p.work_row_bytes = ne0 * 8;
    p.source = t.members.size() > 1 ? std::to_string(t.members.size()) + " experts: " + t.members[0].t->source + " ..." : t.members[0].t->source;
    bool whole = std::any_of(t.members.begin(), t.members.end(), [](const Member& m) { return m.t->whole; });
    if (raw_copy(t, p.type, p.row_bytes())) {
      p.produce = raw_producer(t, p.row_bytes());
      p.source = "ggml blocks of " + slab_of(*t.members[0].t)->tensor + (t.layout == GgufLayout::kStacked ? " (kept experts)" : "");
      return p;
    }
    switch (t.layout) {
      case GgufLayout::kKvbK:
      case GgufLayout::kKvbV: p.row_align = static_cast<int64_t>(p.ne[1]); break;
      case GgufLayout::kRopePairs: p.row_align = p.ne.size() > 1 ? c_.head_dim : 1; break;
      default: break;
    }
    if (whole) p.row_align = t.layout == GgufLayout::kStacked ? rows_of(*t.members[0].t) : p.rows();
    GgmlType type = p.type;
    if (t.layout == GgufLayout::kKvbK || t.layout == GgufLayout::kKvbV) p.produce = kvb_producer(t, type);
    else p.produce = row_producer(t, type, ne0, t.layout == GgufLayout::kRopePairs ? c_.head_dim : 0);
    return p;
  }

  // Byte copies of the stored blocks, expert slab by expert slab.
  GgufProducer raw_producer(const Target& t, uint64_t row_bytes) const {
    std::vector<const GgmlSlab*> slabs;
    for (const auto& m : t.members) slabs.push_back(slab_of(*m.t));
    int64_t per = slabs[0]->rows;
    return [slabs, per, row_bytes](int64_t g0, int64_t g1, std::byte* out) {
      for (int64_t g = g0; g < g1;) {
        const GgmlSlab* s = slabs[static_cast<size_t>(g / per)];
        int64_t a = g % per, b = std::min(per, a + (g1 - g));
        s->file->read(s->offset + static_cast<uint64_t>(a) * row_bytes, static_cast<size_t>(b - a) * row_bytes, out + (g - g0) * row_bytes);
        g += b - a;
      }
    };
  }

  // Rows of the members (stacked along rows), llama q/k rows permuted per head when head_dim > 0.
  static GgufProducer row_producer(const Target& t, GgmlType type, uint64_t ne0, int64_t head_dim) {
    std::vector<const OutputTensor*> members;
    for (const auto& m : t.members) members.push_back(m.t);
    int64_t per = rows_of(*members[0]);
    uint64_t row_bytes = ggml_row_bytes(type, ne0);
    return [members, per, type, ne0, head_dim, row_bytes](int64_t g0, int64_t g1, std::byte* out) {
      for (int64_t g = g0; g < g1;) {
        const OutputTensor& m = *members[static_cast<size_t>(g / per)];
        int64_t a = g % per, b = std::min(per, a + (g1 - g));
        size_t n = static_cast<size_t>(b - a) * ne0;
        float* buf = thread_scratch(m.whole ? static_cast<size_t>(per) * ne0 : n, 1);
        const float* rows = fetch_f32(m, a, b, buf) + (m.whole ? static_cast<size_t>(a) * ne0 : 0);
        if (head_dim > 0) {
          // GGUF row h·d + 2i + j ← HF row h·d + j·d/2 + i; a bias (one row) has its elements moved.
          bool bias = m.shape.size() < 2;
          int64_t count = bias ? static_cast<int64_t>(ne0) : b - a, width = bias ? 1 : static_cast<int64_t>(ne0);
          std::vector<float> perm(n);
          for (int64_t r = 0; r < count; ++r) {
            int64_t h = r / head_dim, k = r % head_dim;
            int64_t from = h * head_dim + (k % 2) * (head_dim / 2) + k / 2;
            std::memcpy(&perm[static_cast<size_t>(r * width)], rows + from * width, static_cast<size_t>(width) * 4);
          }
          encode_ggml(type, perm.data(), static_cast<int64_t>(n), out + (g - g0) * row_bytes);
        } else {
          encode_ggml(type, rows, static_cast<int64_t>(n), out + (g - g0) * row_bytes);
        }
        g += b - a;
      }
    };
  }

  // DeepSeek kv_b_proj [heads·(nope+v), kv_lora] → attn_k_b (per head nope rows, transposed) or
  // attn_v_b (per head v rows). Calls cover whole heads.
  GgufProducer kvb_producer(const Target& t, GgmlType type) const {
    const OutputTensor* m = t.members[0].t;
    int64_t nope = c_.qk_nope_head_dim, v = c_.v_head_dim, lora = c_.kv_lora_rank;
    bool k = t.layout == GgufLayout::kKvbK;
    int64_t rows_per_head = k ? lora : v, width = k ? nope : lora;
    return [m, nope, v, lora, k, rows_per_head, width, type](int64_t g0, int64_t g1, std::byte* out) {
      uint64_t row_bytes = ggml_row_bytes(type, static_cast<uint64_t>(width));
      std::vector<float> head(static_cast<size_t>(rows_per_head * width));
      for (int64_t h = g0 / rows_per_head; h * rows_per_head < g1; ++h) {
        int64_t a = h * (nope + v) + (k ? 0 : nope), b = a + (k ? nope : v);
        float* buf = thread_scratch(static_cast<size_t>((m->whole ? rows_of(*m) : b - a) * lora), 1);
        const float* rows = fetch_f32(*m, a, b, buf) + (m->whole ? static_cast<size_t>(a * lora) : 0);
        if (k)
          for (int64_t n = 0; n < nope; ++n)
            for (int64_t c = 0; c < lora; ++c) head[static_cast<size_t>(c * nope + n)] = rows[n * lora + c];
        else
          std::memcpy(head.data(), rows, head.size() * 4);
        encode_ggml(type, head.data(), static_cast<int64_t>(head.size()), out + (h * rows_per_head - g0) * row_bytes);
      }
    };
  }

  const Plan& plan_;
  const GgufExportOptions& o_;
  ModelConfig c_;
  const GgufArch* arch_ = nullptr;
  std::vector<Target> targets_;
  int n_attn_v_ = 0;
  mutable int attn_v_seen_ = 0;
};

}  // namespace

uint32_t gguf_file_type(std::optional<GgmlType> type, GgmlType most_common) {
  switch (type.value_or(most_common)) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ4_K: return 15;  // Q4_K_M
    case GgmlType::kQ5_K: return 17;  // Q5_K_M
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kBF16: return 32;
    case GgmlType::kMXFP4: return 38;
    default: return 0;
  }
}

GgufPlan plan_gguf(const Plan& plan, const GgufExportOptions& options) { return Exporter(plan, options).run(); }

}  // namespace moeforge
