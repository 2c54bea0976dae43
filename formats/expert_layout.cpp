#include "formats/expert_layout.hpp"

#include <array>
#include <map>
#include <memory>
#include <regex>

#include "core/error.hpp"

namespace moeforge {
namespace {

// "model.layers.3.mlp" → the per-expert module prefix for this model type.
std::string per_expert_prefix(const std::string& fused_prefix, bool mixtral) {
  if (!mixtral || !fused_prefix.ends_with(".mlp")) return fused_prefix;
  return fused_prefix.substr(0, fused_prefix.size() - 4) + ".block_sparse_moe";
}

TensorInfo view(const TensorInfo& t, std::string name, Shape shape, uint64_t begin) {
  TensorInfo v = t;
  v.name = std::move(name);
  v.shape = std::move(shape);
  v.begin = begin;
  v.end = begin + static_cast<uint64_t>(shape_numel(v.shape)) * dtype_size(t.dtype);
  return v;
}

struct ExpertParts {
  std::map<int, std::map<std::string, const OutputTensor*>> experts;  // expert → projection → tensor
  size_t first_position = 0;
};

}  // namespace

const char* expert_layout_name(ExpertLayout l) { return l == ExpertLayout::kFused ? "fused" : "per-expert"; }

bool has_v5_fused_layout(const std::string& model_type) {
  for (const char* t : {"deepseek_v3", "glm4_moe", "qwen3_moe", "qwen2_moe", "olmoe", "mixtral"})
    if (model_type == t) return true;
  return false;
}

std::vector<TensorInfo> per_expert_views(const TensorInfo& t, const std::string& model_type, const std::string& label) {
  if (!has_v5_fused_layout(model_type)) return {};
  const bool mixtral = model_type == "mixtral";
  if (mixtral && t.name.ends_with(".mlp.gate.weight")) {
    std::string layer = t.name.substr(0, t.name.size() - std::string(".mlp.gate.weight").size());
    return {view(t, layer + ".block_sparse_moe.gate.weight", t.shape, t.begin)};
  }
  bool gate_up = t.name.ends_with(".experts.gate_up_proj"), down = t.name.ends_with(".experts.down_proj");
  if (!gate_up && !down) return {};
  if (t.shape.size() != 3 || (gate_up && t.shape[1] % 2 != 0))
    throw FormatError(where(label, t.name) + "fused expert tensor of shape " + shape_string(t.shape) +
                      (gate_up ? ", expected [experts, 2 × intermediate, hidden]" : ", expected [experts, hidden, intermediate]") +
                      "; hint: transformers v5 writes gate_up_proj [E, 2I, H] and down_proj [E, H, I]");
  std::string prefix = per_expert_prefix(t.name.substr(0, t.name.rfind(".experts.")), mixtral) + ".experts.";
  const uint64_t es = dtype_size(t.dtype);
  const int64_t E = t.shape[0], rows = t.shape[1], cols = t.shape[2];
  std::vector<TensorInfo> out;
  for (int64_t e = 0; e < E; ++e) {
    uint64_t at = t.begin + static_cast<uint64_t>(e * rows * cols) * es;
    std::string p = prefix + std::to_string(e) + ".";
    if (gate_up) {
      out.push_back(view(t, p + (mixtral ? "w1.weight" : "gate_proj.weight"), {rows / 2, cols}, at));
      out.push_back(view(t, p + (mixtral ? "w3.weight" : "up_proj.weight"), {rows / 2, cols}, at + static_cast<uint64_t>(rows / 2 * cols) * es));
    } else {
      out.push_back(view(t, p + (mixtral ? "w2.weight" : "down_proj.weight"), {rows, cols}, at));
    }
  }
  return out;
}

void fuse_expert_tensors(Plan& plan, const std::string& model_type) {
  if (!has_v5_fused_layout(model_type)) return;
  const bool mixtral = model_type == "mixtral";
  static const std::regex kExpert(R"(^(.*)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj|w1|w2|w3)\.weight$)");
  std::map<std::string, ExpertParts> layers;  // fused prefix → parts
  std::vector<OutputTensor> kept;
  std::map<std::string, size_t> position;     // fused prefix → index in `kept`
  for (const OutputTensor& t : plan.tensors) {
    std::smatch m;
    if (std::regex_match(t.name, m, kExpert)) {
      std::string prefix = m[1];
      if (mixtral && prefix.ends_with(".block_sparse_moe")) prefix = prefix.substr(0, prefix.size() - 17) + ".mlp";
      std::string proj = m[3] == "w1" ? "gate_proj" : m[3] == "w3" ? "up_proj" : m[3] == "w2" ? "down_proj" : std::string(m[3]);
      if (!position.count(prefix)) {
        position[prefix] = kept.size();
        kept.emplace_back();  // placeholder for gate_up_proj
        kept.emplace_back();  // and down_proj
      }
      layers[prefix].experts[std::stoi(m[2])][proj] = &t;
      continue;
    }
    kept.push_back(t);
    if (mixtral && t.name.ends_with(".block_sparse_moe.gate.weight"))
      kept.back().name = t.name.substr(0, t.name.size() - std::string(".block_sparse_moe.gate.weight").size()) + ".mlp.gate.weight";
  }
  for (auto& [prefix, parts] : layers) {
    const int E = static_cast<int>(parts.experts.size());
    // Copies: the plan's own tensors are replaced below.
    auto member = std::make_shared<std::vector<std::array<OutputTensor, 3>>>();
    std::vector<std::array<const OutputTensor*, 3>> source;
    for (int e = 0; e < E; ++e) {
      auto it = parts.experts.find(e);
      if (it == parts.experts.end() || it->second.size() != 3)
        throw UsageError(prefix + ": expert " + std::to_string(e) + " is incomplete; the fused layout needs experts 0.." + std::to_string(E - 1) +
                         " with gate, up and down");
      source.push_back({it->second["gate_proj"], it->second["up_proj"], it->second["down_proj"]});
      const auto& s0 = source[0];
      for (int j = 0; j < 3; ++j) {
        const OutputTensor* x = source.back()[j];
        if (x->dtype != s0[0]->dtype || x->shape.size() != 2 || x->shape != s0[j]->shape ||
            (j < 2 && x->shape != s0[0]->shape) || (j == 2 && x->shape != Shape{s0[0]->shape[1], s0[0]->shape[0]}))
          throw UsageError(x->name + ": shape " + shape_string(x->shape) + " or dtype differs from expert 0's; the fused layout needs equal experts");
      }
      member->push_back({*source.back()[0], *source.back()[1], *source.back()[2]});
    }
    const int64_t I = source[0][0]->shape[0], H = source[0][0]->shape[1];
    const uint64_t es = dtype_size(source[0][0]->dtype);
    OutputTensor gu, dn;
    gu.name = prefix + ".experts.gate_up_proj";
    dn.name = prefix + ".experts.down_proj";
    gu.dtype = dn.dtype = source[0][0]->dtype;
    gu.shape = {E, 2 * I, H};
    dn.shape = {E, H, I};
    gu.source = "experts 0.." + std::to_string(E - 1) + " gate and up, fused";
    dn.source = "experts 0.." + std::to_string(E - 1) + " down, fused";
    // Each call fills whole experts: one expert's tensors are produced at a time.
    gu.produce = [member, I, H, es](int64_t b, int64_t e, std::byte* out) {
      for (int64_t x = b; x < e; ++x) {
        std::byte* at = out + static_cast<uint64_t>((x - b) * 2 * I * H) * es;
        (*member)[static_cast<size_t>(x)][0].produce(0, I, at);
        (*member)[static_cast<size_t>(x)][1].produce(0, I, at + static_cast<uint64_t>(I * H) * es);
      }
    };
    dn.produce = [member, I, H, es](int64_t b, int64_t e, std::byte* out) {
      for (int64_t x = b; x < e; ++x) (*member)[static_cast<size_t>(x)][2].produce(0, H, out + static_cast<uint64_t>((x - b) * H * I) * es);
    };
    kept[position[prefix]] = std::move(gu);
    kept[position[prefix] + 1] = std::move(dn);
  }
  plan.tensors = std::move(kept);
}

}  // namespace moeforge
