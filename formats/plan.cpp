#include "formats/plan.hpp"

#include <vector>

#include "formats/tensor_reader.hpp"

namespace moeforge {

uint64_t OutputTensor::row_bytes() const {
  int64_t r = rows();
  return r == 0 ? 0 : nbytes() / static_cast<uint64_t>(r);
}

uint64_t Plan::total_bytes() const {
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.nbytes();
  return total;
}

OutputTensor copy_tensor(const TensorInfo& source, const std::string& out_name, DType out_dtype) {
  OutputTensor out;
  out.name = out_name;
  out.dtype = out_dtype;
  out.shape = source.shape;
  const TensorInfo* src = &source;
  if (out_dtype == source.dtype) {
    out.source = "copy " + source.name;
    out.copy_of = src;
    out.produce = [src](int64_t r0, int64_t r1, std::byte* dst) { copy_rows_raw(*src, r0, r1, dst); };
  } else {
    out.source = "convert " + source.name + " " + std::string(dtype_name(source.dtype)) + "→" + std::string(dtype_name(out_dtype));
    out.produce = [src, out_dtype](int64_t r0, int64_t r1, std::byte* dst) {
      size_t n = static_cast<size_t>((r1 - r0) * src->cols());
      float* buf = thread_scratch(n);
      read_rows_f32(*src, r0, r1, buf);
      from_f32(out_dtype, buf, n, dst);
    };
  }
  return out;
}

DType output_dtype(const std::optional<DType>& requested, DType source) { return requested ? *requested : source; }

}  // namespace moeforge
