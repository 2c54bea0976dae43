// One output tensor of a dense merge: its inputs (one per slice source, in mergekit's input
// order), the resolved parameters, and the method's arithmetic. A merger first streams the whole
// tensor once or a few times for the statistics its method needs (norms, dot products, top-k
// cuts, L1 sums — never a copy of the tensor), then produces any range of output rows on demand,
// so memory stays at a few row blocks per thread whatever the tensor's size. Arithmetic is float32
// in mergekit's operation order; reductions accumulate in float64.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/plan.hpp"
#include "merge/merge_registry.hpp"

namespace moeforge {

// Rows [r0, r1) (first dimension) of one input as float32, cropped to the output's shape.
using RowReader = std::function<void(int64_t r0, int64_t r1, float* dst)>;

// The random keep decisions of DARE and DELLA: keep element `flat` of input `input`'s task vector
// with probability p. The default is moeforge's seeded stream; tests replay mergekit's masks.
class MaskSource {
 public:
  virtual ~MaskSource() = default;
  virtual bool keep(size_t input, int64_t flat, float p) const = 0;
};
// Seeded by (seed, tensor name, input position): the same decisions for any chunking or --threads.
std::shared_ptr<const MaskSource> seeded_masks(uint64_t seed, const std::string& tensor_name);

struct TensorMergeSpec {
  const MergeMethodInfo* method = nullptr;
  std::string name;                    // output tensor name, for messages
  Shape shape;                         // output shape
  std::vector<RowReader> inputs;       // in input order (base included)
  std::vector<std::string> labels;     // per input: its model, for messages
  int base = -1;                       // position of base_model among the inputs, -1 if none
  std::map<std::string, double> global;                  // resolved global parameters (unset ones absent)
  std::vector<std::map<std::string, double>> per_model;  // per input, resolved per-model parameters
  std::shared_ptr<const MaskSource> masks;               // DARE/DELLA; seeded_masks() by default
};

class TensorMerger {
 public:
  virtual ~TensorMerger() = default;
  // Whole-tensor statistics; called once before rows().
  virtual void prepare() {}
  // Output rows [r0, r1) as float32 (thread-safe after prepare()).
  virtual void rows(int64_t r0, int64_t r1, float* out) const = 0;
};

// Checks the spec (input counts, parameter ranges) and builds the method's merger. Errors are
// UsageErrors naming the tensor; nothing is read.
std::shared_ptr<TensorMerger> make_tensor_merger(TensorMergeSpec spec);

// An output tensor computed by the merger (prepared on first use), rounded to out_dtype.
OutputTensor merged_tensor(std::shared_ptr<TensorMerger> merger, const std::string& name, const Shape& shape, DType out_dtype,
                           const std::string& source);

// Runs a merger over the whole tensor into memory (tests, small tensors).
std::vector<float> merge_all(TensorMerger& merger, const Shape& shape);

}  // namespace moeforge
