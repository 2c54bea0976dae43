#include "engine/tensor_ops.hpp"

#include <algorithm>
#include <cmath>

namespace moeforge {

void linear_rows(const float* X, int64_t ld, int64_t n, int64_t in, const float* W, int64_t out, float* Y) {
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const Mat, 0, Stride> x(X, n, in, Stride(ld));
  ConstMatMap w(W, out, in);
  MatMap y(Y, n, out);
  y.noalias() = x * w.transpose();
}

void linear(const float* X, int64_t n, const Weight& W, const Weight* bias, float* Y) {
  const int64_t in = W.cols(), out = W.rows();
  const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t r0 = b * kRowBlock, r1 = std::min(n, r0 + kRowBlock);
    linear_rows(X + r0 * in, in, r1 - r0, in, W.data(), out, Y + r0 * out);
    if (bias != nullptr && !bias->empty())
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < out; ++c) Y[r * out + c] += bias->data()[c];
  }
}

void rms_norm(float* X, int64_t rows, int64_t width, const float* w, double eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* x = X + r * width;
    double ss = 0;
    for (int64_t c = 0; c < width; ++c) ss += static_cast<double>(x[c]) * x[c];
    float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    for (int64_t c = 0; c < width; ++c) x[c] = (x[c] * scale) * w[c];
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

void softmax(float* x, int64_t n) {
  float m = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax_with_sink(float* x, int64_t n, float sink) {
  float m = std::max(sink, *std::max_element(x, x + n));
  double sum = std::exp(static_cast<double>(sink - m));
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace moeforge
