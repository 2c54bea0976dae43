#include "formats/tensor_reader.hpp"

#include <cstring>

#include "core/error.hpp"
#include "formats/safetensors.hpp"
#include "formats/tensor_source.hpp"

namespace moeforge {
namespace {

struct ByteRange {
  size_t offset_in_file;
  size_t length;
};

ByteRange rows_of(const TensorInfo& t, int64_t row_begin, int64_t row_end) {
  if (t.file == nullptr)
    throw NoDataYet("tensor '" + t.name + "' has no data yet: a dry run plans this step from the plan of the step before; run without --dry-run");
  if (row_begin < 0 || row_end < row_begin || row_end > t.rows())
    throw Error(ExitCode::kInternal, where(t.file->path(), t.name) + "row range out of bounds");
  size_t row_bytes = static_cast<size_t>(t.cols()) * dtype_size(t.dtype);
  size_t offset = t.file->header().data_start + t.begin + static_cast<size_t>(row_begin) * row_bytes;
  return {offset, static_cast<size_t>(row_end - row_begin) * row_bytes};
}

}  // namespace

std::span<const std::byte> mapped_bytes(const TensorInfo& t) {
  if (t.source != nullptr) throw Error(ExitCode::kInternal, "tensor '" + t.name + "' is a view and has no mapped bytes");
  rows_of(t, 0, 0);  // throws for planned tensors
  return t.file->data(t);
}

void copy_rows_raw(const TensorInfo& t, int64_t row_begin, int64_t row_end, std::byte* dst) {
  if (t.source != nullptr) return t.source->read_rows(t, row_begin, row_end, dst);
  ByteRange r = rows_of(t, row_begin, row_end);
  t.file->mapping().read(r.offset_in_file, r.length, dst);
}

void read_rows_f32(const TensorInfo& t, int64_t row_begin, int64_t row_end, float* dst) {
  if (t.source != nullptr) return t.source->read_rows_f32(t, row_begin, row_end, dst);
  ByteRange r = rows_of(t, row_begin, row_end);
  if (t.dtype == DType::kF32) {
    t.file->mapping().read(r.offset_in_file, r.length, reinterpret_cast<std::byte*>(dst));
    return;
  }
  auto* raw = reinterpret_cast<std::byte*>(thread_scratch((r.length + 3) / 4, 3));
  t.file->mapping().read(r.offset_in_file, r.length, raw);
  to_f32(t.dtype, raw, r.length / dtype_size(t.dtype), dst);
}

float* thread_scratch(size_t n, int slot) {
  thread_local std::vector<float> buffers[4];
  auto& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

std::vector<float> read_f32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  read_rows_f32(t, 0, t.rows(), out.data());
  return out;
}

std::vector<double> read_f64(const TensorInfo& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  if (t.source != nullptr) {
    std::vector<float> f = read_f32(t);
    std::copy(f.begin(), f.end(), out.begin());
    return out;
  }
  ByteRange r = rows_of(t, 0, t.rows());
  std::vector<std::byte> raw(r.length);
  t.file->mapping().read(r.offset_in_file, r.length, raw.data());
  to_f64(t.dtype, raw.data(), out.size(), out.data());
  return out;
}

}  // namespace moeforge
