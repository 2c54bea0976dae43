// Reading tensors out of checkpoints, whole or by rows, as raw bytes or converted to float32.
// Reads go through pread() into the caller's buffer (no mapping is touched), so a streaming
// pass over a large model keeps RSS at the size of its buffers.
// A tensor's "rows" are its first dimension (a 0-d or 1-d tensor is one row).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "formats/tensor_info.hpp"

namespace moeforge {

// The tensor's bytes in the memory map (zero copy); throws for a tensor that is only planned or a
// view (TensorInfo::source; the other readers work for views).
std::span<const std::byte> mapped_bytes(const TensorInfo& t);
void copy_rows_raw(const TensorInfo& t, int64_t row_begin, int64_t row_end, std::byte* dst);
void read_rows_f32(const TensorInfo& t, int64_t row_begin, int64_t row_end, float* dst);
std::vector<float> read_f32(const TensorInfo& t);
std::vector<double> read_f64(const TensorInfo& t);

// A per-thread scratch buffer of at least n floats (slot 0..3), reused across calls so hot
// producers neither allocate nor zero memory.
float* thread_scratch(size_t n, int slot = 0);

}  // namespace moeforge
