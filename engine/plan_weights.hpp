// A plan as the forward engine's weights: the checkpoint a verb is about to write, run before it
// exists. Each tensor is produced in its output dtype (so the engine sees exactly the values that
// will be written) and converted to float32 when the engine asks for it. Producers run at every
// load, so a tensor whose values live in a buffer filled while the engine runs (routers fitted
// layer by layer) is read as it is at that moment.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/weight_source.hpp"
#include "formats/plan.hpp"

namespace moeforge {

class PlanWeights : public WeightSource {
 public:
  PlanWeights(const Plan& plan, std::string label);  // the plan must outlive this
  std::string label() const override { return label_; }
  const nlohmann::json& config() const override { return plan_.config; }
  std::string config_label() const override { return label_ + " (planned config.json)"; }
  const TensorInfo* find(const std::string& name) const override;
  Weight load(const TensorInfo& t) const override;
  void read_rows(const TensorInfo& t, int64_t begin, int64_t end, float* out) const override;

 private:
  const OutputTensor& tensor(const TensorInfo& t) const;
  const Plan& plan_;
  std::string label_;
  std::vector<TensorInfo> infos_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace moeforge
