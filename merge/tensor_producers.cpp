#include "merge/tensor_producers.hpp"

#include <algorithm>

#include "core/random.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

OutputTensor skeleton(const std::string& name, DType dtype, const Shape& shape, std::string source) {
  OutputTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  t.source = std::move(source);
  return t;
}

int64_t cols_of(const Shape& s) {
  int64_t rows = s.size() < 2 ? 1 : s[0];
  return rows == 0 ? 0 : shape_numel(s) / rows;
}

void store(const double* values, size_t n, DType dtype, std::byte* out) { from_f64(dtype, values, n, out); }

}  // namespace

OutputTensor weighted_average(const std::vector<const TensorInfo*>& sources, const std::vector<double>& weights,
                              const std::string& out_name, DType out_dtype) {
  OutputTensor t = skeleton(out_name, out_dtype, sources[0]->shape,
                            "weighted average of " + std::to_string(sources.size()) + " × " + sources[0]->name);
  int64_t cols = sources[0]->cols();
  t.produce = [sources, weights, cols, out_dtype](int64_t r0, int64_t r1, std::byte* out) {
    // Sub-blocks of rows keep the float64 accumulator small enough to stay in cache.
    const int64_t step = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
    thread_local std::vector<double> acc;
    const size_t out_row = static_cast<size_t>(cols) * dtype_size(out_dtype);
    for (int64_t a = r0; a < r1; a += step) {
      int64_t b = std::min(r1, a + step);
      size_t n = static_cast<size_t>((b - a) * cols);
      acc.assign(n, 0.0);
      float* buf = thread_scratch(n, 0);
      for (size_t s = 0; s < sources.size(); ++s) {
        read_rows_f32(*sources[s], a, b, buf);
        const double w = weights[s];
        for (size_t i = 0; i < n; ++i) acc[i] += w * static_cast<double>(buf[i]);
      }
      store(acc.data(), n, out_dtype, out + static_cast<size_t>(a - r0) * out_row);
    }
  };
  return t;
}

OutputTensor zero_padded(const TensorInfo& source, const std::string& out_name, DType out_dtype, const Shape& shape) {
  OutputTensor t = skeleton(out_name, out_dtype, shape, "zero-padded " + source.name + " " + shape_string(source.shape));
  const TensorInfo* src = &source;
  int64_t out_cols = cols_of(shape), in_cols = source.cols(), in_rows = source.rows();
  t.produce = [src, out_cols, in_cols, in_rows, out_dtype](int64_t r0, int64_t r1, std::byte* out) {
    std::vector<float> rows(static_cast<size_t>((r1 - r0) * out_cols), 0.0f);
    int64_t have = std::min(r1, in_rows) - r0;
    if (have > 0) {
      float* buf = thread_scratch(static_cast<size_t>(have * in_cols), 0);
      read_rows_f32(*src, r0, r0 + have, buf);
      for (int64_t r = 0; r < have; ++r) std::copy(buf + r * in_cols, buf + (r + 1) * in_cols, rows.data() + r * out_cols);
    }
    from_f32(out_dtype, rows.data(), rows.size(), out);
  };
  return t;
}

OutputTensor with_noise(OutputTensor inner, DType out_dtype, double std, uint64_t seed, double scale_after) {
  OutputTensor t = skeleton(inner.name, out_dtype, inner.shape, inner.source + " + N(0, " + std::to_string(std) + "²)" +
                                                                   (scale_after != 1.0 ? " × " + std::to_string(scale_after) : ""));
  int64_t cols = cols_of(inner.shape);
  SeededStream stream(seed, fnv1a(inner.name));
  Producer base = std::move(inner.produce);
  t.produce = [base, cols, stream, std, scale_after, out_dtype](int64_t r0, int64_t r1, std::byte* out) {
    size_t n = static_cast<size_t>((r1 - r0) * cols);
    std::vector<float> buf(n);
    base(r0, r1, reinterpret_cast<std::byte*>(buf.data()));
    uint64_t first = static_cast<uint64_t>(r0 * cols);
    for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>((buf[i] + std * stream.normal(first + i)) * scale_after);
    from_f32(out_dtype, buf.data(), n, out);
  };
  return t;
}

OutputTensor row_slice(const TensorInfo& source, int64_t r0, int64_t r1, double scale, const std::string& out_name, DType out_dtype) {
  Shape shape = source.shape;
  shape[0] = r1 - r0;
  OutputTensor t = skeleton(out_name, out_dtype, shape, source.name + " rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ")");
  const TensorInfo* src = &source;
  int64_t cols = source.cols();
  t.produce = [src, r0, cols, scale, out_dtype](int64_t a, int64_t b, std::byte* out) {
    size_t n = static_cast<size_t>((b - a) * cols);
    float* buf = thread_scratch(n, 0);
    read_rows_f32(*src, r0 + a, r0 + b, buf);
    if (scale != 1.0)
      for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(buf[i] * scale);
    from_f32(out_dtype, buf, n, out);
  };
  return t;
}

OutputTensor col_slice(const TensorInfo& source, int64_t c0, int64_t c1, double scale, const std::string& out_name, DType out_dtype) {
  Shape shape = {source.rows(), c1 - c0};
  OutputTensor t = skeleton(out_name, out_dtype, shape, source.name + " columns [" + std::to_string(c0) + ", " + std::to_string(c1) + ")");
  const TensorInfo* src = &source;
  int64_t cols = source.cols();
  t.produce = [src, c0, c1, cols, scale, out_dtype](int64_t a, int64_t b, std::byte* out) {
    float* buf = thread_scratch(static_cast<size_t>((b - a) * cols), 0);
    read_rows_f32(*src, a, b, buf);
    std::vector<float> picked;
    picked.reserve(static_cast<size_t>((b - a) * (c1 - c0)));
    for (int64_t r = 0; r < b - a; ++r)
      for (int64_t c = c0; c < c1; ++c) picked.push_back(static_cast<float>(buf[r * cols + c] * scale));
    from_f32(out_dtype, picked.data(), picked.size(), out);
  };
  return t;
}

OutputTensor scaled(const TensorInfo& source, double scale, const std::string& out_name, DType out_dtype) {
  if (scale == 1.0) return copy_tensor(source, out_name, out_dtype);
  OutputTensor t = row_slice(source, 0, source.rows(), scale, out_name, out_dtype);
  t.source = source.name + " × " + std::to_string(scale);
  return t;
}

OutputTensor from_values(std::shared_ptr<const std::vector<double>> values, const Shape& shape, const std::string& out_name,
                         DType out_dtype, const std::string& source) {
  OutputTensor t = skeleton(out_name, out_dtype, shape, source);
  int64_t cols = cols_of(shape);
  t.produce = [values, cols, out_dtype](int64_t r0, int64_t r1, std::byte* out) {
    store(values->data() + r0 * cols, static_cast<size_t>((r1 - r0) * cols), out_dtype, out);
  };
  return t;
}

OutputTensor filled(double value, const Shape& shape, const std::string& out_name, DType out_dtype, const std::string& source) {
  return from_values(std::make_shared<const std::vector<double>>(static_cast<size_t>(shape_numel(shape)), value), shape, out_name,
                     out_dtype, source);
}

}  // namespace moeforge
