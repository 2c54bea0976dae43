#include "engine/weight_source.hpp"

#include "core/error.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {

void CheckpointWeights::read_rows(const TensorInfo& t, int64_t begin, int64_t end, float* out) const { read_rows_f32(t, begin, end, out); }

const TensorInfo& require_weight(const WeightSource& source, const std::string& name) {
  const TensorInfo* t = source.find(name);
  if (t == nullptr) throw FormatError(where(source.label(), name) + "missing; hint: `moeforge inspect --tensors` lists what it holds");
  return *t;
}

Weight load_weight(const WeightSource& source, const std::string& name, const Shape& expected) {
  const TensorInfo& t = require_weight(source, name);
  if (!expected.empty() && t.shape != expected)
    throw FormatError(where(source.label(), name) + "shape " + shape_string(t.shape) + ", config.json implies " + shape_string(expected));
  return source.load(t);
}

Weight load_optional(const WeightSource& source, const std::string& name, const Shape& expected) {
  return source.find(name) == nullptr ? Weight() : load_weight(source, name, expected);
}

}  // namespace moeforge
