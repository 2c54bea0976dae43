// The plan of an MoE with fewer experts per layer, shared by pruning and expert merging: each
// output expert is one source expert (copied bit for bit, router row and correction bias
// likewise) or a weighted group of them (tensors from a merge function, router row = the weighted
// mean of the members' rows). Everything else is copied; config.json gets the new expert count.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/matrix.hpp"
#include "formats/plan.hpp"
#include "formats/checkpoint.hpp"
#include "model/model_config.hpp"

namespace moeforge {

struct OutputExpert {
  std::vector<int> members;     // source expert indices
  std::vector<double> weights;  // one per member, summing to 1
};

// Tensors of a merged (multi-member) output expert.
using ExpertMerge = std::function<OutputTensor(int layer, const OutputExpert& expert, Proj proj, const std::string& out_name, DType dtype)>;

// One expert in nn.Linear orientation, float64; the biases are gpt-oss only (empty elsewhere).
struct FfnWeights {
  MatD gate, up, down;  // [I, H], [I, H], [H, I]
  VecD gate_bias, up_bias, down_bias;  // [I], [I], [H]
};
// A whole merged expert of a family whose experts are stored fused (gpt-oss): every projection and
// bias of the group's merged expert, computed once and shared by the layer's fused tensors.
using FusedExpertMerge = std::function<std::shared_ptr<const FfnWeights>(int layer, const OutputExpert& expert)>;

struct ReduceSpec {
  const Checkpoint* model = nullptr;
  const ModelConfig* config = nullptr;
  std::vector<std::vector<OutputExpert>> layers;  // per layer; empty for dense layers
  std::optional<DType> dtype;
  ExpertMerge merge;  // needed only when some output expert has several members
  FusedExpertMerge merge_fused;  // likewise, for gpt-oss' fused experts
};

Plan plan_reduced_moe(const ReduceSpec& spec);

// DeepSeek-V3's group-limited routing after reduction: groups are kept (empty ones dropped) when
// every layer keeps the same number, at least 2, from each group it keeps and the same number of
// groups; otherwise the limit is lifted (n_group = topk_group = 1) and `note` says why.
struct GroupLimit {
  int n_group = 1, topk_group = 1;
  std::string note;
};
GroupLimit reduced_group_limit(const ModelConfig& c, const std::vector<std::vector<OutputExpert>>& layers);

// The name of a routed expert's tensor in a family.
std::string expert_tensor_name(const Family& f, int layer, int expert, Proj proj);

}  // namespace moeforge
