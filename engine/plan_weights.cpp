#include "engine/plan_weights.hpp"

#include "core/error.hpp"

namespace moeforge {

PlanWeights::PlanWeights(const Plan& plan, std::string label) : plan_(plan), label_(std::move(label)) {
  infos_.reserve(plan.tensors.size());
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const OutputTensor& o = plan.tensors[i];
    TensorInfo t;
    t.name = o.name;
    t.dtype = o.dtype;
    t.shape = o.shape;
    t.end = o.nbytes();
    infos_.push_back(std::move(t));
    index_.emplace(o.name, i);
  }
}

const TensorInfo* PlanWeights::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &infos_[it->second];
}

const OutputTensor& PlanWeights::tensor(const TensorInfo& t) const {
  auto it = index_.find(t.name);
  if (it == index_.end() || &infos_[it->second] != &t) throw Error(ExitCode::kInternal, where(label_, t.name) + "is not a tensor of this plan");
  return plan_.tensors[it->second];
}

void PlanWeights::read_rows(const TensorInfo& t, int64_t begin, int64_t end, float* out) const {
  const OutputTensor& o = tensor(t);
  const int64_t rows = o.rows();
  if (begin < 0 || end > rows || begin > end) throw Error(ExitCode::kInternal, where(label_, t.name) + "rows out of range");
  const size_t per_row = static_cast<size_t>(o.row_bytes() / dtype_size(o.dtype));
  std::vector<std::byte> bytes(static_cast<size_t>(o.whole ? o.nbytes() : (end - begin) * o.row_bytes()));
  if (o.whole) o.produce(0, rows, bytes.data());
  else o.produce(begin, end, bytes.data());
  const std::byte* from = o.whole ? bytes.data() + begin * o.row_bytes() : bytes.data();
  to_f32(o.dtype, from, static_cast<size_t>(end - begin) * per_row, out);
}

Weight PlanWeights::load(const TensorInfo& t) const {
  std::vector<float> values(static_cast<size_t>(t.numel()));
  read_rows(t, 0, t.rows(), values.data());
  return Weight(t.name, t.rows(), t.cols(), std::move(values));
}

}  // namespace moeforge
