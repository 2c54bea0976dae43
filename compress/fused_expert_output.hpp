// gpt-oss' fused expert tensors of a reduced layer (pruned or merged): gate_up_proj [E', H, 2I]
// (gate/up interleaved), gate_up_proj_bias [E', 2I], down_proj [E', I, H], down_proj_bias [E', H].
// Kept experts of a plain input in its own dtype are copied bit for bit; kept experts of an MXFP4
// input are their exact dequantised values; merged experts come from the merge callback.
#pragma once
#include <string>
#include <vector>

#include "compress/reduced_moe.hpp"

namespace moeforge {

// `out_name` is one of the four plain tensor names of `layer`; `dtype` is its output dtype.
OutputTensor gpt_oss_fused_output(const Checkpoint& model, const ModelConfig& c, int layer, const std::vector<OutputExpert>& experts,
                                  const std::string& out_name, DType dtype, const FusedExpertMerge& merge);

// An input expert as float64 (MXFP4 dequantised), in FfnWeights' orientation.
FfnWeights read_expert_f64(const Checkpoint& model, const ModelConfig& c, int layer, int expert);

}  // namespace moeforge
