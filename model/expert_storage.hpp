// Where a checkpoint keeps its routed experts, checked against config.json, and one expert read
// as float32 matrices whatever the storage: per-expert tensors (or the per-expert views of the
// transformers-v5 fused layout), or gpt-oss' own fused tensors — gate_up_proj [E, H, 2I] with
// gate/up interleaved along 2I and down_proj [E, I, H] (input-major), or their MXFP4 blocks and
// scales [E, 2I, H/32, 16] / [E, 2I, H/32] and [E, H, I/32, 16] / [E, H, I/32] (output-major).
#pragma once
#include <string>
#include <vector>

#include "formats/checkpoint.hpp"
#include "model/model_config.hpp"

namespace moeforge {

// Every MoE layer's fused expert tensors (transformers-v5 layout and gpt-oss, incl. MXFP4) have
// the shape the config implies, expert axis first; FormatError naming the file, tensor, expected
// and found shapes otherwise. Per-expert tensors are checked where they are read.
void check_expert_storage(const Checkpoint& ckpt, const ModelConfig& c);

// True when the layer's gpt-oss experts are stored as MXFP4 blocks and scales.
bool gpt_oss_mxfp4(const Checkpoint& ckpt, int layer);

// One routed expert in nn.Linear orientation: y = down · act(gate · x (+ b), up · x (+ b)) (+ b).
struct ExpertFfn {
  int64_t width = 0, hidden = 0;
  std::vector<float> gate, up;  // [width, hidden]
  std::vector<float> down;      // [hidden, width]
  std::vector<float> gate_bias, up_bias, down_bias;  // gpt-oss only: [width], [width], [hidden]
};
ExpertFfn read_expert(const Checkpoint& ckpt, const ModelConfig& c, int layer, int expert);

// Name of a gpt-oss expert tensor of a layer: "gate_up_proj", "down_proj_bias", "down_proj_blocks" ...
std::string gpt_oss_expert_tensor(int layer, const std::string& what);

}  // namespace moeforge
