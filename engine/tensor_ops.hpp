// The numerical building blocks of the forward pass, in float32 with float64 where sums need it.
// linear() splits its rows into fixed blocks and runs each block's GEMM on one thread, so results
// are bit-identical whatever the thread count (Eigen's own threading would change the blocking).
#pragma once
#include <cstdint>

#include "engine/weights.hpp"

namespace moeforge {

inline constexpr int64_t kRowBlock = 256;

// Y[n, W.rows] = X[n, W.cols] · Wᵀ (+ bias).
void linear(const float* X, int64_t n, const Weight& W, const Weight* bias, float* Y);
// Same on a strided row view of X (ld = distance between rows).
void linear_rows(const float* X, int64_t ld, int64_t n, int64_t in, const float* W, int64_t out, float* Y);

// In place over rows of width `width`: x · rsqrt(mean(x²) + eps) · w.
void rms_norm(float* X, int64_t rows, int64_t width, const float* w, double eps);
float silu(float x);
// Numerically stable softmax of n values in place.
void softmax(float* x, int64_t n);
// The same with one more logit (an attention sink) in the denominator; its probability is dropped.
void softmax_with_sink(float* x, int64_t n, float sink);
float sigmoid(float x);

}  // namespace moeforge
