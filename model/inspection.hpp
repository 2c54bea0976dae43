// `inspect`: what a checkpoint (safetensors file/dir, or GGUF) holds, as JSON and as text:
// format and layout, family and sizes, experts, router, parameter counts (total and active per
// token), dtype histogram, and warnings for missing, extra or mis-shaped tensors.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "formats/checkpoint.hpp"
#include "formats/gguf.hpp"
#include "model/model_config.hpp"

namespace moeforge {

struct InspectOptions {
  bool tensors = false;  // list every tensor
  std::string filter;    // ECMAScript regex on tensor names (implies tensors)
  bool stats = false;    // per-tensor min/max/mean/std/L2/NaN/Inf
  int threads = 0;
};

nlohmann::ordered_json inspect_checkpoint(const Checkpoint& ckpt, const InspectOptions& options);
nlohmann::ordered_json inspect_gguf(const GgufFile& gguf, const std::string& path, const InspectOptions& options);

// The shape the family's table implies for a tensor, or empty when it has no fixed rule.
Shape expected_shape(const ExpectedTensor& t, const ModelConfig& c);

// How a checkpoint's tensors agree with its config.json and the family's table.
struct StructureReport {
  std::vector<std::string> errors;    // missing or mis-shaped tensors, tensors beyond the configured layers/experts
  std::vector<std::string> warnings;  // tensors the table does not know
  std::vector<int> experts_per_layer; // experts found per MoE layer
};
StructureReport check_structure(const Checkpoint& ckpt, const ModelConfig& config);
// Every writing verb calls this on its inputs: MismatchError naming the first problem.
void require_consistent_structure(const Checkpoint& ckpt, const ModelConfig& config);

struct ParameterCount {
  uint64_t total = 0;
  uint64_t active = 0;  // per token: total minus the routed experts a token does not use
};
ParameterCount count_parameters(const Checkpoint& ckpt, const ModelConfig* config);

}  // namespace moeforge
