// `diff`: two checkpoints compared tensor by tensor — names only in one, shape or dtype
// differences, and for common tensors the max absolute difference and the relative L2 error
// ‖a − b‖ / ‖b‖, streamed in float64. NaN equals NaN at the same position.
#pragma once
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"

namespace moeforge {

struct DiffOptions {
  double atol = 0.0;
  int threads = 0;
};

// {"equal": bool, "only_in_a": [...], "only_in_b": [...], "tensors": [{name, dtype_a, dtype_b,
//  shape_a, shape_b, max_abs, rel_l2, equal}], "config_differences": [...], "summary": {...}}
nlohmann::ordered_json diff_checkpoints(const Checkpoint& a, const Checkpoint& b, const DiffOptions& options);

}  // namespace moeforge
