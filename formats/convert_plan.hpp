// `convert`: the plan that rewrites a checkpoint — every tensor copied (bit-exact) or converted
// to another float dtype (integer tensors are kept), config.json with torch_dtype updated,
// tokenizer and generation files carried over. Resharding comes from the writer options.
#pragma once
#include <optional>

#include "formats/checkpoint.hpp"
#include "formats/plan.hpp"

namespace moeforge {

Plan plan_convert(const Checkpoint& input, std::optional<DType> dtype);

// Updates torch_dtype in a config to what a plan actually writes (the most common float type).
void set_torch_dtype(nlohmann::json& config, const Plan& plan);

}  // namespace moeforge
