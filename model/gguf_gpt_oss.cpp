#include "model/gguf_gpt_oss.hpp"

#include <cstring>

#include "core/error.hpp"
#include "formats/dtype.hpp"
#include "formats/ggml_quants.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

// Expert e's bytes of a fused tensor (one expert = one row of the output tensor), in its dtype.
const std::byte* expert_bytes(const OutputTensor& t, int64_t e, std::vector<std::byte>& buf) {
  const size_t per = static_cast<size_t>(t.row_bytes());
  if (t.whole) {
    if (buf.size() != per * static_cast<size_t>(t.rows())) {
      buf.resize(per * static_cast<size_t>(t.rows()));
      t.produce(0, t.rows(), buf.data());
    }
    return buf.data() + static_cast<size_t>(e) * per;
  }
  buf.resize(per);
  t.produce(e, e + 1, buf.data());
  return buf.data();
}

std::vector<float> expert_f32(const OutputTensor& t, int64_t e, std::vector<std::byte>& buf) {
  const std::byte* raw = expert_bytes(t, e, buf);
  size_t n = static_cast<size_t>(shape_numel(t.shape) / t.shape[0]);
  std::vector<float> out(n);
  to_f32(t.dtype, raw, n, out.data());
  return out;
}

// GGUF rows of expert e from float values: weights are transposed ([in, out] → [out, in]) and,
// for gate/up, the even or odd output rows taken; biases ([out]) have their elements taken.
std::vector<float> float_rows(GgufLayout layout, const OutputTensor& t, int64_t e, std::vector<std::byte>& buf) {
  std::vector<float> src = expert_f32(t, e, buf);
  const bool bias = t.shape.size() == 2;
  const int64_t in = bias ? 1 : t.shape[1], out = t.shape.back();
  const int64_t step = layout == GgufLayout::kOssDown ? 1 : 2, first = layout == GgufLayout::kOssUp ? 1 : 0;
  const int64_t rows = out / step;
  std::vector<float> dst(static_cast<size_t>(rows * in));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) dst[static_cast<size_t>(r * in + i)] = src[static_cast<size_t>(i * out + r * step + first)];
  return dst;
}

// ggml MXFP4 rows of expert e: per 32 values one E8M0 scale byte (unchanged) and 16 bytes whose
// byte j holds value j (low nibble) and value j + 16 (high nibble); Hugging Face byte k holds
// values 2k (low) and 2k + 1 (high). The 4-bit codes themselves are the same.
void mxfp4_rows(GgufLayout layout, const OssSource& s, int64_t e, std::byte* out, std::vector<std::byte>& b1, std::vector<std::byte>& b2) {
  const std::byte* blocks = expert_bytes(*s.values, e, b1);
  const std::byte* scales = expert_bytes(*s.scales, e, b2);
  const int64_t rows_in = s.values->shape[1], nb = s.values->shape[2];
  const int64_t step = layout == GgufLayout::kOssDown ? 1 : 2, first = layout == GgufLayout::kOssUp ? 1 : 0;
  for (int64_t r = 0; r < rows_in / step; ++r) {
    const int64_t src_row = r * step + first;
    for (int64_t b = 0; b < nb; ++b) {
      const auto* q = reinterpret_cast<const uint8_t*>(blocks + (src_row * nb + b) * 16);
      auto* dst = reinterpret_cast<uint8_t*>(out + (r * nb + b) * 17);
      dst[0] = static_cast<uint8_t>(scales[src_row * nb + b]);
      auto code = [&](int m) { return static_cast<uint8_t>((q[m / 2] >> (4 * (m % 2))) & 0x0F); };
      for (int j = 0; j < 16; ++j) dst[1 + j] = static_cast<uint8_t>(code(j) | (code(j + 16) << 4));
    }
  }
}

}  // namespace

OssSource gpt_oss_source(const std::vector<const OutputTensor*>& members, const std::string& gguf_name) {
  OssSource s;
  const OutputTensor* blocks = nullptr;
  for (const OutputTensor* m : members) {
    if (m->name.ends_with("_scales")) s.scales = m;
    else if (m->name.ends_with("_blocks")) blocks = m;
    else s.values = m;
  }
  if (blocks != nullptr) s.values = blocks;
  if ((blocks == nullptr) != (s.scales == nullptr) || s.values == nullptr || members.size() != (s.mxfp4() ? 2u : 1u))
    throw FormatError("GGUF tensor '" + gguf_name + "' needs MXFP4 blocks and scales together, or one float tensor (found " +
                      std::to_string(members.size()) + " for it: " + members[0]->name + " ...)");
  const size_t rank = s.mxfp4() ? 4 : (s.values->name.ends_with("_bias") ? 2 : 3);
  if (s.values->shape.size() != rank || (s.mxfp4() && (s.values->shape[3] != 16 || s.scales->shape.size() != 3)))
    throw FormatError("tensor '" + s.values->name + "' has an unexpected shape for a gpt-oss expert tensor (" + std::to_string(s.values->shape.size()) +
                      " dimensions)");
  return s;
}

std::vector<uint64_t> gpt_oss_ne(GgufLayout layout, const OssSource& s) {
  const Shape& sh = s.values->shape;
  const uint64_t experts = static_cast<uint64_t>(sh[0]), half = layout == GgufLayout::kOssDown ? 1 : 2;
  if (s.mxfp4()) return {static_cast<uint64_t>(sh[2]) * 32, static_cast<uint64_t>(sh[1]) / half, experts};
  if (sh.size() == 2) return {static_cast<uint64_t>(sh[1]) / half, experts};
  return {static_cast<uint64_t>(sh[1]), static_cast<uint64_t>(sh[2]) / half, experts};
}

int64_t gpt_oss_rows_per_expert(const std::vector<uint64_t>& ne) { return ne.size() == 3 ? static_cast<int64_t>(ne[1]) : 1; }

GgufProducer gpt_oss_producer(GgufLayout layout, const OssSource& s, GgmlType type, const std::vector<uint64_t>& ne) {
  const int64_t per = gpt_oss_rows_per_expert(ne);
  const uint64_t row_bytes = ggml_row_bytes(type, ne[0]);
  return [layout, s, type, per, row_bytes](int64_t g0, int64_t g1, std::byte* out) {
    std::vector<std::byte> b1, b2;
    for (int64_t e = g0 / per; e * per < g1; ++e) {
      std::byte* dst = out + (e * per - g0) * static_cast<int64_t>(row_bytes);
      if (s.mxfp4()) {
        mxfp4_rows(layout, s, e, dst, b1, b2);
      } else {
        std::vector<float> rows = float_rows(layout, *s.values, e, b1);
        encode_ggml(type, rows.data(), static_cast<int64_t>(rows.size()), dst);
      }
    }
  };
}

}  // namespace moeforge
