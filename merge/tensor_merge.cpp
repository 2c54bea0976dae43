#include "merge/tensor_merge.hpp"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/error.hpp"
#include "core/random.hpp"
#include "merge/merge_kernels.hpp"

namespace moeforge {
namespace {

constexpr int64_t kBlockElements = int64_t{1} << 16;

class SeededMasks : public MaskSource {
 public:
  SeededMasks(uint64_t seed, const std::string& name) : seed_(seed), key_(fnv1a(name)) {}
  bool keep(size_t input, int64_t flat, float p) const override {
    SeededStream s(seed_, key_ ^ splitmix64(input + 1));
    return s.uniform(static_cast<uint64_t>(flat)) < static_cast<double>(p);
  }

 private:
  uint64_t seed_, key_;
};

int64_t rows_of(const Shape& s) { return s.size() < 2 ? 1 : s[0]; }

size_t count_non_base(const TensorMergeSpec& s) { return s.inputs.size() - (s.base >= 0 ? 1 : 0); }

// mergekit returns a lone input unchanged for these methods (a one-source slice, or base_model alone).
bool lone_input_passes(const std::string& m) {
  return m == "slerp" || m == "nuslerp" || m == "karcher" || m == "arcee_fusion" || m == "model_stock" || m == "nearswap";
}

void check_counts(const TensorMergeSpec& s) {
  const std::string& m = s.method->name;
  size_t n = s.inputs.size(), others = count_non_base(s);
  bool has_base = s.base >= 0;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) tensor_error(s, m + " " + what + " (found " + std::to_string(n) + " input" + (n == 1 ? "" : "s") + (has_base ? " including base_model" : "") + ")");
  };
  if (s.method->base == BaseRule::kRequired && !has_base) tensor_error(s, m + " needs base_model among the inputs");
  if (m == "slerp" && n != 1) need(n == 2 && has_base, "interpolates base_model and exactly one other model");
  if (m == "nuslerp" && n != 1) need(others == 2, "merges exactly two models (plus an optional base_model)");
  if (m == "multislerp") need(others >= 1, "needs at least one model besides base_model");
  if (m == "model_stock" && !(n == 1 && has_base)) need(others >= 2, "needs base_model plus at least two other models");
  if (m == "nearswap") need(others <= 1, "merges base_model with exactly one other model");
  if (m == "arcee_fusion" && n != 1) need(n == 2 && has_base, "merges base_model with exactly one other model");
  if (m == "passthrough") need(n == 1, "copies exactly one model's tensor (give one source per slice)");
}

}  // namespace

std::shared_ptr<const MaskSource> seeded_masks(uint64_t seed, const std::string& tensor_name) {
  return std::make_shared<SeededMasks>(seed, tensor_name);
}

InputStream::InputStream(const TensorMergeSpec& spec) : inputs_(&spec.inputs), rows_(rows_of(spec.shape)) {
  cols_ = rows_ == 0 ? 0 : shape_numel(spec.shape) / rows_;
}

void InputStream::for_each(int64_t r0, int64_t r1, const std::function<void(const Block&)>& fn) const {
  thread_local std::vector<std::vector<float>> buffers;
  const size_t inputs = inputs_->size();
  const int64_t step = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(cols_, 1));
  Block b;
  b.x.resize(inputs);
  for (int64_t a = r0; a < r1; a += step) {
    b.r0 = a;
    b.r1 = std::min(r1, a + step);
    b.flat0 = a * cols_;
    b.n = static_cast<size_t>((b.r1 - b.r0) * cols_);
    if (buffers.size() < inputs) buffers.resize(inputs);
    for (size_t i = 0; i < inputs; ++i) {
      if (buffers[i].size() < b.n) buffers[i].resize(b.n);
      (*inputs_)[i](b.r0, b.r1, buffers[i].data());
      b.x[i] = buffers[i].data();
    }
    fn(b);
  }
}

double global_param(const TensorMergeSpec& s, const std::string& name) {
  auto v = optional_global(s, name);
  if (!v) throw Error(ExitCode::kInternal, "tensor '" + s.name + "': global parameter " + name + " unresolved");
  return *v;
}

std::optional<double> optional_global(const TensorMergeSpec& s, const std::string& name) {
  auto it = s.global.find(name);
  return it == s.global.end() ? std::nullopt : std::optional<double>(it->second);
}

double model_param(const TensorMergeSpec& s, size_t input, const std::string& name) {
  auto v = optional_model_param(s, input, name);
  if (!v) throw Error(ExitCode::kInternal, "tensor '" + s.name + "': parameter " + name + " of " + s.labels[input] + " unresolved");
  return *v;
}

std::optional<double> optional_model_param(const TensorMergeSpec& s, size_t input, const std::string& name) {
  if (input >= s.per_model.size()) return std::nullopt;
  auto it = s.per_model[input].find(name);
  return it == s.per_model[input].end() ? std::nullopt : std::optional<double>(it->second);
}

std::vector<size_t> non_base_inputs(const TensorMergeSpec& s) {
  std::vector<size_t> out;
  for (size_t i = 0; i < s.inputs.size(); ++i)
    if (static_cast<int>(i) != s.base) out.push_back(i);
  return out;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void tensor_error(const TensorMergeSpec& s, const std::string& what) { throw UsageError("tensor '" + s.name + "': " + what); }

std::shared_ptr<TensorMerger> make_tensor_merger(TensorMergeSpec spec) {
  if (spec.inputs.empty()) tensor_error(spec, "no inputs");
  if (spec.labels.size() < spec.inputs.size()) spec.labels.resize(spec.inputs.size(), "input");
  if (!spec.masks) spec.masks = seeded_masks(0, spec.name);
  check_counts(spec);
  const std::string& m = spec.method->name;
  if (spec.inputs.size() == 1 && lone_input_passes(m)) return make_passthrough_input(std::move(spec), 0, 1.0);
  if (m == "passthrough") {
    double scale = optional_model_param(spec, 0, "scale").value_or(1.0);
    return make_passthrough_input(std::move(spec), 0, scale);
  }
  if (spec.method->gta) return make_gta(std::move(spec));
  if (m == "linear") return make_linear(std::move(spec));
  if (m == "slerp") return make_slerp(std::move(spec));
  if (m == "nuslerp") return make_nuslerp(std::move(spec));
  if (m == "multislerp") return make_multislerp(std::move(spec));
  if (m == "karcher") return make_karcher(std::move(spec));
  if (m == "nearswap") return make_nearswap(std::move(spec));
  if (m == "sce") return make_sce(std::move(spec));
  if (m == "model_stock") return make_model_stock(std::move(spec));
  if (m == "arcee_fusion") return make_arcee_fusion(std::move(spec));
  throw Error(ExitCode::kInternal, "merge method " + m + " has no implementation");
}

OutputTensor merged_tensor(std::shared_ptr<TensorMerger> merger, const std::string& name, const Shape& shape, DType out_dtype,
                           const std::string& source) {
  OutputTensor t;
  t.name = name;
  t.dtype = out_dtype;
  t.shape = shape;
  t.source = source;
  int64_t rows = rows_of(shape);
  int64_t cols = rows == 0 ? 0 : shape_numel(shape) / rows;
  auto once = std::make_shared<std::once_flag>();
  t.produce = [merger, once, cols, out_dtype](int64_t r0, int64_t r1, std::byte* out) {
    std::call_once(*once, [&] { merger->prepare(); });
    // Row blocks of about kBlockElements keep the float32 buffer small whatever the chunk size.
    const int64_t step = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(cols, 1));
    const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(out_dtype);
    thread_local std::vector<float> buf;
    for (int64_t a = r0; a < r1; a += step) {
      int64_t b = std::min(r1, a + step);
      size_t n = static_cast<size_t>((b - a) * cols);
      if (buf.size() < n) buf.resize(n);
      merger->rows(a, b, buf.data());
      from_f32(out_dtype, buf.data(), n, out + static_cast<size_t>(a - r0) * row_bytes);
    }
  };
  return t;
}

std::vector<float> merge_all(TensorMerger& merger, const Shape& shape) {
  merger.prepare();
  std::vector<float> out(static_cast<size_t>(shape_numel(shape)));
  merger.rows(0, rows_of(shape), out.data());
  return out;
}

}  // namespace moeforge
