// Where the forward engine reads its weights: a checkpoint on disk, or a plan not written yet
// (plan_weights.hpp: the MoE being built, whose routers are fitted while the engine runs through
// it). Either gives float32 copies or views of whole tensors, and rows of one (the embedding).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine/weights.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::string label() const = 0;               // names the model in messages
  virtual const nlohmann::json& config() const = 0;    // config.json; null when there is none
  virtual std::string config_label() const = 0;        // names config.json in messages
  virtual const TensorInfo* find(const std::string& name) const = 0;  // name, dtype, shape; null when absent
  virtual Weight load(const TensorInfo& t) const = 0;
  virtual void read_rows(const TensorInfo& t, int64_t begin, int64_t end, float* out) const = 0;
  // The checkpoint behind it, for layouts read only from files (gpt-oss experts); null for a plan.
  virtual const Checkpoint* checkpoint() const { return nullptr; }
};

// A checkpoint's tensors, used in place where they are aligned float32.
class CheckpointWeights : public WeightSource {
 public:
  explicit CheckpointWeights(const Checkpoint& ckpt) : ckpt_(ckpt) {}
  std::string label() const override { return ckpt_.label(); }
  const nlohmann::json& config() const override { return ckpt_.config(); }
  std::string config_label() const override { return ckpt_.config_path().string(); }
  const TensorInfo* find(const std::string& name) const override { return ckpt_.find_tensor(name); }
  Weight load(const TensorInfo& t) const override { return Weight(t); }
  void read_rows(const TensorInfo& t, int64_t begin, int64_t end, float* out) const override;
  const Checkpoint* checkpoint() const override { return &ckpt_; }

 private:
  const Checkpoint& ckpt_;
};

// Loads a tensor, checking its shape; throws FormatError naming the model and tensor.
Weight load_weight(const WeightSource& source, const std::string& name, const Shape& expected);
// The same, or an empty Weight when the source lacks the tensor.
Weight load_optional(const WeightSource& source, const std::string& name, const Shape& expected);
// The tensor's info, or FormatError naming the model and tensor.
const TensorInfo& require_weight(const WeightSource& source, const std::string& name);

}  // namespace moeforge
