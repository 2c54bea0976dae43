// The two ways transformers stores the routed experts of a layer (deepseek_v3, glm4_moe, qwen3_moe,
// qwen2_moe, olmoe, mixtral; not gpt_oss, whose own fused tensors are read by model/expert_storage):
//   per-expert  P.experts.{e}.gate_proj.weight [I, H], .up_proj.weight [I, H], .down_proj.weight [H, I]
//               (Mixtral: P = ….block_sparse_moe, w1 = gate, w3 = up, w2 = down)
//   fused (v5)  P.experts.gate_up_proj [E, 2I, H]: expert e's gate rows, then its up rows;
//               P.experts.down_proj [E, H, I]        (Mixtral: P = ….mlp, router ….mlp.gate.weight)
// Every expert's slice of a fused tensor is contiguous, so reading exposes per-expert views into
// the same bytes and writing concatenates per-expert producers, one expert at a time.
#pragma once
#include <string>
#include <vector>

#include "formats/plan.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {

const char* expert_layout_name(ExpertLayout l);  // "per-expert" / "fused"

// Whether a model type's experts may be stored in the v5 fused layout.
bool has_v5_fused_layout(const std::string& model_type);

// The per-expert views of one stored tensor (and Mixtral's router under its per-expert name), or
// nothing when `t` is not a fused expert tensor. FormatError for a fused tensor of a bad rank.
std::vector<TensorInfo> per_expert_views(const TensorInfo& t, const std::string& model_type, const std::string& label);

// Rewrites a plan's per-expert expert tensors into the fused layout (in place of expert 0's first
// tensor). UsageError when a layer's experts are incomplete or their shapes or dtypes differ.
void fuse_expert_tensors(Plan& plan, const std::string& model_type);

}  // namespace moeforge
