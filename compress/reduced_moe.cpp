#include "compress/reduced_moe.hpp"

#include <algorithm>
#include <cstring>
#include <set>

#include "compress/fused_expert_output.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "formats/convert_plan.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

bool singleton(const OutputExpert& e) { return e.members.size() == 1; }

// Rows along the expert axis of a router-shaped tensor ([E, H], or [E] for biases) or of a fused
// expert tensor ([E, ...], gpt-oss): kept rows copied raw, merged rows as weighted means in float64.
OutputTensor expert_rows(const TensorInfo& src, const std::vector<OutputExpert>& experts, const std::string& name, DType dtype) {
  OutputTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = src.shape;
  t.shape[0] = static_cast<int64_t>(experts.size());
  const int64_t width = src.shape[0] > 0 ? src.numel() / src.shape[0] : 0;
  bool all_kept = dtype == src.dtype && std::all_of(experts.begin(), experts.end(), singleton);
  t.source = all_kept ? "rows of " + src.name : "rows of " + src.name + ", merged rows averaged";
  const TensorInfo* s = &src;
  t.whole = true;
  t.produce = [s, experts, width, dtype, all_kept](int64_t, int64_t, std::byte* out) {
    if (all_kept) {
      size_t row = static_cast<size_t>(width) * dtype_size(dtype);
      std::vector<std::byte> all;  // a bias [E] is one row: read it whole
      if (s->shape.size() < 2) {
        all.resize(static_cast<size_t>(s->numel()) * dtype_size(dtype));
        copy_rows_raw(*s, 0, 1, all.data());
      }
      for (size_t j = 0; j < experts.size(); ++j) {
        auto e = static_cast<int64_t>(experts[j].members[0]);
        if (all.empty()) copy_rows_raw(*s, e, e + 1, out + j * row);
        else std::memcpy(out + j * row, all.data() + static_cast<size_t>(e) * row, row);
      }
      return;
    }
    std::vector<double> in = read_f64(*s), values(experts.size() * static_cast<size_t>(width), 0.0);
    for (size_t j = 0; j < experts.size(); ++j)
      for (size_t m = 0; m < experts[j].members.size(); ++m)
        for (int64_t d = 0; d < width; ++d) values[j * width + d] += experts[j].weights[m] * in[experts[j].members[m] * width + d];
    from_f64(dtype, values.data(), values.size(), out);
  };
  return t;
}

// A fused expert tensor of gpt-oss when every expert is kept as stored: sliced along dim 0 (MXFP4
// blocks and scales stay U8, copied as they are).
OutputTensor fused_expert_rows(const TensorInfo& src, const std::vector<OutputExpert>& experts, const std::string& name,
                               const std::optional<DType>& requested) {
  return expert_rows(src, experts, name, src.dtype == DType::kU8 ? DType::kU8 : output_dtype(requested, src.dtype));
}

bool any_merged(const ReduceSpec& s) {
  for (const auto& layer : s.layers)
    if (!std::all_of(layer.begin(), layer.end(), singleton)) return true;
  return false;
}

// Merged gpt-oss experts cannot keep MXFP4 blocks: the output stores all experts plain (the
// dequantised values of kept experts are exact in bfloat16), so transformers must not expect blocks.
void drop_mxfp4(nlohmann::json& config, Plan& plan) {
  config.erase("quantization_config");
  plan.notes.push_back("MXFP4 experts written dequantised as plain fused tensors (merged experts cannot keep their blocks); "
                       "quantization_config removed from config.json");
}

// The new expert count and experts per token under every key the config spells them with.
void update_expert_counts(const ModelConfig& c, int count, nlohmann::json& config) {
  for (const std::string& key : expert_count_keys(c)) config[key] = count;
  config["num_experts_per_tok"] = std::min(c.top_k, count);
  if (config.contains("experts_per_token")) config["experts_per_token"] = std::min(c.top_k, count);  // gpt-oss duplicate
}

}  // namespace

GroupLimit reduced_group_limit(const ModelConfig& c, const std::vector<std::vector<OutputExpert>>& layers) {
  if (c.n_group <= 1) return {c.n_group, c.topk_group, ""};
  // Output experts stay in their original order, so the groups survive exactly when every layer
  // keeps the same number of experts from each group it keeps at all (a merged expert counts in
  // its first member's group) and the same number of groups.
  const int per_group = c.n_experts / c.n_group;
  int groups = -1, kept_per_group = -1;
  bool even = true;
  for (size_t l = 0; l < layers.size() && even; ++l) {
    if (!c.is_moe_layer(static_cast<int>(l))) continue;
    std::vector<int> counts(static_cast<size_t>(c.n_group), 0);
    for (const auto& e : layers[l]) ++counts[static_cast<size_t>(e.members[0] / per_group)];
    int nonempty = 0;
    for (int n : counts) {
      if (n == 0) continue;
      ++nonempty;
      if (kept_per_group < 0) kept_per_group = n;
      even = even && n == kept_per_group;
    }
    if (groups < 0) groups = nonempty;
    even = even && nonempty == groups;
  }
  const int topk_group = std::min(c.topk_group, groups);
  // Hugging Face and vLLM score a group by the sum of its two best experts: a group needs two, and
  // the chosen groups must hold the top-k.
  std::string why = !even                                 ? "the kept experts are not spread evenly over the original groups"
                    : kept_per_group < 2                  ? "each group would keep 1 expert; group scores need at least 2"
                    : c.top_k > topk_group * kept_per_group ? "the chosen groups would hold fewer than the top-k experts"
                                                          : "";
  if (why.empty()) return {groups, topk_group, ""};
  return {1, 1, "group-limited routing removed (n_group " + std::to_string(c.n_group) + " -> 1, topk_group " +
                    std::to_string(c.topk_group) + " -> 1): " + why + "; the router now picks the top-k among all kept experts"};
}

std::string expert_tensor_name(const Family& f, int layer, int expert, Proj proj) {
  return expand(find_pattern(f, Role::kExpert, proj)->pattern, layer, expert);
}

Plan plan_reduced_moe(const ReduceSpec& s) {
  const ModelConfig& c = *s.config;
  const Family& f = *c.family;
  int count = -1;
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& layer = s.layers[static_cast<size_t>(l)];
    if (!c.is_moe_layer(l)) continue;
    if (count >= 0 && static_cast<int>(layer.size()) != count)
      throw UsageError("the result would keep " + std::to_string(count) + " experts in one layer and " + std::to_string(layer.size()) +
                       " in layer " + std::to_string(l) + "; " + std::string(f.model_type) +
                       " configs hold one expert count for every layer (transformers and vLLM need it uniform)");
    count = static_cast<int>(layer.size());
    std::set<int> used;
    for (const auto& e : layer) {
      if (e.members.empty() || e.members.size() != e.weights.size()) throw Error(ExitCode::kInternal, "malformed output expert");
      for (int m : e.members) {
        if (m < 0 || m >= c.n_experts) throw UsageError("layer " + std::to_string(l) + ": expert " + std::to_string(m) + " does not exist");
        if (!used.insert(m).second) throw UsageError("layer " + std::to_string(l) + ": expert " + std::to_string(m) + " is used twice");
      }
    }
  }
  if (count < 1) throw UsageError("every MoE layer must keep at least one expert");

  Plan plan;
  plan.config = s.model->config();
  update_expert_counts(c, count, plan.config);
  const bool fused_merge = f.expert_kind == ExpertKind::kClampedSwiGlu && any_merged(s);
  if (fused_merge && c.mxfp4_experts) drop_mxfp4(plan.config, plan);
  if (f.router == RouterKind::kSigmoidGroupTopK) {
    GroupLimit g = reduced_group_limit(c, s.layers);
    plan.config["n_group"] = g.n_group;
    plan.config["topk_group"] = g.topk_group;
    if (!g.note.empty()) {
      warn(g.note);
      plan.notes.push_back(g.note);
    }
  }
  ModelConfig out = resolve_config(plan.config, "the reduced config");
  for (const auto& e : expected_tensors(out)) {
    const auto* layer = e.layer >= 0 ? &s.layers[static_cast<size_t>(e.layer)] : nullptr;
    Role role = e.pattern->role;
    if (role == Role::kExpert) {
      const OutputExpert& oe = (*layer)[static_cast<size_t>(e.expert)];
      const TensorInfo& first = s.model->require_tensor(expert_tensor_name(f, e.layer, oe.members[0], e.pattern->proj));
      DType dt = output_dtype(s.dtype, first.dtype);
      if (singleton(oe)) {
        OutputTensor t = copy_tensor(first, e.name, dt);
        t.source = "expert " + std::to_string(oe.members[0]) + ": " + t.source;
        plan.tensors.push_back(std::move(t));
      } else {
        if (!s.merge) throw Error(ExitCode::kInternal, "no merge function for a merged expert");
        plan.tensors.push_back(s.merge(e.layer, oe, e.pattern->proj, e.name, dt));
      }
    } else if (role == Role::kRouter || role == Role::kRouterBias) {
      const TensorInfo& src = s.model->require_tensor(e.name);
      plan.tensors.push_back(expert_rows(src, *layer, e.name, output_dtype(s.dtype, src.dtype)));
    } else if (role == Role::kFusedExpert && fused_merge) {
      const TensorInfo* src = s.model->find_tensor(e.name);
      DType dt = src != nullptr ? output_dtype(s.dtype, src->dtype) : s.dtype.value_or(DType::kBF16);  // dequantised MXFP4: bf16
      plan.tensors.push_back(gpt_oss_fused_output(*s.model, c, e.layer, *layer, e.name, dt, s.merge_fused));
    } else if (role == Role::kFusedExpert) {
      plan.tensors.push_back(fused_expert_rows(s.model->require_tensor(e.name), *layer, e.name, s.dtype));
    } else {
      const TensorInfo& src = s.model->require_tensor(e.name);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    }
  }
  set_torch_dtype(plan.config, plan);
  plan.side_files = s.model->side_files();
  plan.expert_layout = s.model->expert_layout();
  plan.inputs.push_back(s.model->path());
  return plan;
}

}  // namespace moeforge
