// Internal to merge/: what the per-method mergers share. InputStream walks a tensor in blocks of
// whole rows, reading every input into per-thread float32 buffers; the make_* functions build
// each family of methods (merge_methods_*.cpp).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "merge/tensor_merge.hpp"

namespace moeforge {

struct Block {
  int64_t r0 = 0, r1 = 0;  // rows
  int64_t flat0 = 0;       // flat index of the block's first element
  size_t n = 0;            // elements
  std::vector<const float*> x;  // per input (null for inputs not read)
};

class InputStream {
 public:
  explicit InputStream(const TensorMergeSpec& spec);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t numel() const { return rows_ * cols_; }
  // fn(block) for consecutive blocks of whole rows covering [r0, r1) (about 64K elements each).
  void for_each(int64_t r0, int64_t r1, const std::function<void(const Block&)>& fn) const;
  void for_all(const std::function<void(const Block&)>& fn) const { for_each(0, rows_, fn); }

 private:
  const std::vector<RowReader>* inputs_;
  int64_t rows_, cols_;
};

// A merger reading its spec's inputs through an InputStream. Streaming the inputs again for each
// statistics pass beats holding float32 copies: bf16 inputs read from the page cache move half
// the bytes, and nothing is allocated per tensor.
class StreamMerger : public TensorMerger {
 public:
  explicit StreamMerger(TensorMergeSpec spec) : spec_(std::move(spec)), stream_(spec_) {}

 protected:
  TensorMergeSpec spec_;
  InputStream stream_;
};

// A parameter of the spec: global, or per input (throws an internal error when unresolved).
double global_param(const TensorMergeSpec& s, const std::string& name);
std::optional<double> optional_global(const TensorMergeSpec& s, const std::string& name);
double model_param(const TensorMergeSpec& s, size_t input, const std::string& name);
std::optional<double> optional_model_param(const TensorMergeSpec& s, size_t input, const std::string& name);
// Positions of the inputs other than the base, in input order.
std::vector<size_t> non_base_inputs(const TensorMergeSpec& s);
// 0.15 → "0.15" (for messages).
std::string number_text(double v);
// "tensor 'NAME': "-prefixed usage error.
[[noreturn]] void tensor_error(const TensorMergeSpec& s, const std::string& what);

using MergerPtr = std::shared_ptr<TensorMerger>;
MergerPtr make_passthrough_input(TensorMergeSpec spec, size_t input, double scale);  // input × scale
MergerPtr make_linear(TensorMergeSpec spec);
MergerPtr make_slerp(TensorMergeSpec spec);
MergerPtr make_nuslerp(TensorMergeSpec spec);
MergerPtr make_multislerp(TensorMergeSpec spec);
MergerPtr make_karcher(TensorMergeSpec spec);
MergerPtr make_nearswap(TensorMergeSpec spec);
MergerPtr make_gta(TensorMergeSpec spec);
MergerPtr make_sce(TensorMergeSpec spec);
MergerPtr make_model_stock(TensorMergeSpec spec);
MergerPtr make_arcee_fusion(TensorMergeSpec spec);

}  // namespace moeforge
