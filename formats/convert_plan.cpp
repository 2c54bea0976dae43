#include "formats/convert_plan.hpp"

#include <algorithm>
#include <map>

namespace moeforge {

Plan plan_convert(const Checkpoint& in, std::optional<DType> dtype) {
  Plan plan;
  plan.inputs.push_back(in.path());
  for (const TensorInfo* t : in.tensors()) {
    DType out = dtype && dtype_info(t->dtype).is_float ? *dtype : t->dtype;
    plan.tensors.push_back(copy_tensor(*t, t->name, out));
  }
  plan.side_files = in.side_files();
  plan.expert_layout = in.expert_layout();
  if (in.has_config()) {
    plan.config = in.config();
    set_torch_dtype(plan.config, plan);
  }
  return plan;
}

void set_torch_dtype(nlohmann::json& config, const Plan& plan) {
  std::map<DType, uint64_t> bytes;
  for (const auto& t : plan.tensors)
    if (dtype_info(t.dtype).is_float) bytes[t.dtype] += t.nbytes();
  if (bytes.empty() || !config.is_object()) return;
  auto best = std::max_element(bytes.begin(), bytes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  config["torch_dtype"] = std::string(dtype_info(best->first).torch_name);
}

}  // namespace moeforge
