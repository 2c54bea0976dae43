// Whether dense checkpoints fit together into one MoE: same family, layer count, hidden size,
// vocabulary, head layout, RoPE and norm settings, the same non-FFN tensors with the same shapes,
// and (unless padding is allowed) the same FFN width. Errors name both files and the mismatch.
#pragma once
#include "formats/checkpoint.hpp"
#include "model/model_config.hpp"

namespace moeforge {

struct DenseInput {
  const Checkpoint* ckpt = nullptr;
  ModelConfig config;
};

// Resolves a dense input; throws for MoE or unsupported families.
DenseInput dense_input(const Checkpoint& ckpt, const std::string& role);

void check_fit(const DenseInput& a, const DenseInput& b, bool allow_ffn_width_mismatch);

}  // namespace moeforge
