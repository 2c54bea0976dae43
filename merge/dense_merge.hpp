// Dense merging of whole checkpoints as mergekit-yaml does it (mergekit plan.py MergePlanner),
// for every family moeforge reads, dense or MoE, tensor by tensor: output layer i of a slice takes
// input layer layer_range[0] + i of every source, at gradient position t = i / (n − 1) (1 for a
// one-layer slice); layers are renumbered across slices; tensors outside the layers take their
// sources and parameters from the first slice (embeddings) or the last (norm, lm_head) at t = 0.
// Every parameter is resolved and every input checked while planning, so errors come before
// anything is written; the tensors are computed when the writer asks for them.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "formats/checkpoint.hpp"
#include "formats/plan.hpp"
#include "merge/merge_config.hpp"
#include "merge/tensor_merge.hpp"

namespace moeforge {

struct DenseMergeOptions {
  std::optional<DType> dtype;  // --dtype: every output tensor's dtype (over out_dtype / dtype)
  uint64_t seed = 0;           // DARE/DELLA masks
  std::shared_ptr<const MaskSource> masks;  // replaces the seeded masks (tests)
};

// One output tensor as planned: where its inputs come from and its resolved parameters.
struct MergedTensorPlan {
  std::string name;                 // output tensor
  const SliceDef* slice = nullptr;  // whose sources and parameters apply
  std::vector<int> models;          // per input: config model id (the slice's sources, in order)
  std::vector<std::string> inputs;  // per input: the tensor's name in that model
  double t = 0;                     // gradient position
  int layer = -1;                   // output layer; -1 for tensors outside the layers
  ResolvedParameters params;
};

// `models` holds one checkpoint per config model id (MergeConfig::models order). Layers are
// matched by name (`…layers.N.…`); the output holds the donor's (base_model's, else the first
// source's) tensors outside the layers and, per output layer, the first source's layer tensors.
std::vector<MergedTensorPlan> plan_merge_tensors(const MergeConfig& config, const std::vector<const Checkpoint*>& models);

Plan plan_dense_merge(const MergeConfig& config, const std::vector<const Checkpoint*>& models, const DenseMergeOptions& options);

// The shape the method merges a tensor at, from the inputs' shapes: equal shapes, or for
// embeddings (2-D, `embed`) mergekit's sub-matrix rule — the base's shape for task-vector methods
// (larger inputs cropped), the common top-left sub-matrix otherwise. Throws naming the tensor and
// both files when shapes cannot be reconciled.
Shape merged_shape(const MergeMethodInfo& method, const std::vector<Shape>& shapes, int base, bool embed, const std::string& tensor,
                   const std::vector<std::string>& labels);

// Reads rows of `t` as float32, cropped to `shape` (the top-left sub-matrix) and, with `cast`,
// rounded through that dtype first (mergekit's `dtype:` casts inputs on load).
RowReader tensor_rows(const TensorInfo& t, const Shape& shape, std::optional<DType> cast);

}  // namespace moeforge
