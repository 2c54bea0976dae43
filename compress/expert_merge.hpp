// Merging groups of experts into one expert each (the other way to shrink an MoE):
//   sub-moe  K-means on the experts' mean outputs (cosine), then subspace merging per projection
//            (subspace_merge.hpp; --rank/--energy truncate, full rank is the weighted average)
//   msmoe    M-SMoE: the most-used experts lead, the others join the leader with the most similar
//            router-logit trace; members' neurons are permuted to match the leader (maximum-weight
//            assignment on gate/up/down inner products) before the usage-weighted average
//   hcsmoe   HC-SMoE: average-linkage clustering of the experts' mean outputs (Euclidean),
//            usage-weighted average
//   average  a plain average of the groups given in --groups-file
// Weights are the members' routed-token counts normalised within the group (equal with
// --uniform-weights). The merged expert's router row is the same weighted mean of the members'
// rows (a linear router cannot express the members' combined probability exactly; this keeps the
// row inside the members' span).
#pragma once
#include <optional>
#include <vector>

#include "compress/expert_grouping.hpp"
#include "compress/expert_report.hpp"
#include "compress/reduced_moe.hpp"
#include "compress/subspace_merge.hpp"
#include "formats/plan.hpp"

namespace moeforge {

enum class MergeMethod { kSubMoe, kMsmoe, kHcsmoe, kAverage };
MergeMethod parse_merge_method(const std::string& name);

struct MergeSpec {
  const Checkpoint* model = nullptr;
  const ModelConfig* config = nullptr;
  MergeMethod method = MergeMethod::kSubMoe;
  int groups = 0;                   // merged experts per layer
  std::vector<Groups> fixed;        // from --groups-file (empty layers are clustered)
  const FileStats* stats = nullptr; // calibration statistics (usage, features, router traces)
  bool uniform_weights = false;
  RankChoice rank;
  bool permute = true;              // msmoe neuron alignment
  uint64_t seed = 0;
  std::optional<DType> dtype;
};

struct MergeResult {
  Plan plan;
  std::vector<Groups> groups;     // per layer
  std::vector<LayerCells> cells;  // for --report and --plot
};

MergeResult plan_merge_experts(const MergeSpec& spec);

// Permutes the neurons of expert (gate, up, down) to best match the reference expert; the
// expert's function is unchanged (gate/up biases, when present, move with their neurons).
FfnWeights align_neurons(const FfnWeights& expert, const FfnWeights& reference);

}  // namespace moeforge
