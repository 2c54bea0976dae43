// Output tensors computed from input tensors, row range by row range: weighted averages (float64
// accumulation, one rounding), zero-padded FFNs, seeded noise, neuron slices with a scale, and
// tensors whose values are already known (routers, constants).
#pragma once
#include <memory>
#include <vector>

#include "formats/plan.hpp"

namespace moeforge {

// Σ w_i · source_i with float64 accumulation (weights as given; pass normalised ones for a mean).
OutputTensor weighted_average(const std::vector<const TensorInfo*>& sources, const std::vector<double>& weights,
                              const std::string& out_name, DType out_dtype);

// source placed in the top-left of a zero tensor of `shape` (narrower FFNs padded with zeros).
OutputTensor zero_padded(const TensorInfo& source, const std::string& out_name, DType out_dtype, const Shape& shape);

// (tensor + N(0, std²) noise) × scale_after, the noise seeded by (seed, name, element index);
// `tensor` must produce F32, the result is rounded once to out_dtype.
OutputTensor with_noise(OutputTensor tensor, DType out_dtype, double std, uint64_t seed, double scale_after = 1.0);

// scale × source[rows r0..r1) (a neuron slice of gate/up) or scale × source[:, c0..c1) (of down).
OutputTensor row_slice(const TensorInfo& source, int64_t r0, int64_t r1, double scale, const std::string& out_name, DType out_dtype);
OutputTensor col_slice(const TensorInfo& source, int64_t c0, int64_t c1, double scale, const std::string& out_name, DType out_dtype);

// scale × source (bit-exact copy when scale is 1 and the dtype matches).
OutputTensor scaled(const TensorInfo& source, double scale, const std::string& out_name, DType out_dtype);

// A tensor of known values (row-major, float64, rounded once to out_dtype).
OutputTensor from_values(std::shared_ptr<const std::vector<double>> values, const Shape& shape, const std::string& out_name,
                         DType out_dtype, const std::string& source);
OutputTensor filled(double value, const Shape& shape, const std::string& out_name, DType out_dtype, const std::string& source);

}  // namespace moeforge
