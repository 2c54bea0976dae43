#include "compress/fused_expert_output.hpp"

#include <cstring>

#include "core/error.hpp"
#include "formats/tensor_reader.hpp"
#include "model/expert_storage.hpp"

namespace moeforge {
namespace {

enum class Part { kGateUp, kGateUpBias, kDown, kDownBias };

Part part_of(const std::string& name) {
  if (name.ends_with(".gate_up_proj")) return Part::kGateUp;
  if (name.ends_with(".gate_up_proj_bias")) return Part::kGateUpBias;
  if (name.ends_with(".down_proj")) return Part::kDown;
  if (name.ends_with(".down_proj_bias")) return Part::kDownBias;
  throw Error(ExitCode::kInternal, name + ": not a gpt-oss fused expert tensor");
}

const char* part_suffix(Part p) {
  switch (p) {
    case Part::kGateUp: return "gate_up_proj";
    case Part::kGateUpBias: return "gate_up_proj_bias";
    case Part::kDown: return "down_proj";
    case Part::kDownBias: return "down_proj_bias";
  }
  return "";
}

// One expert's slice of the tensor in its stored order: gate_up_proj [H, 2I] with gate at even and
// up at odd columns (x @ W), down_proj [I, H], biases as stored (gate/up interleaved).
void lay_out(const FfnWeights& w, Part p, double* out) {
  const Eigen::Index I = w.gate.rows(), H = w.gate.cols();
  switch (p) {
    case Part::kGateUp:
      for (Eigen::Index h = 0; h < H; ++h)
        for (Eigen::Index j = 0; j < I; ++j) {
          out[h * 2 * I + 2 * j] = w.gate(j, h);
          out[h * 2 * I + 2 * j + 1] = w.up(j, h);
        }
      return;
    case Part::kGateUpBias:
      for (Eigen::Index j = 0; j < I; ++j) {
        out[2 * j] = w.gate_bias[j];
        out[2 * j + 1] = w.up_bias[j];
      }
      return;
    case Part::kDown:
      for (Eigen::Index i = 0; i < I; ++i)
        for (Eigen::Index h = 0; h < H; ++h) out[i * H + h] = w.down(h, i);
      return;
    case Part::kDownBias:
      for (Eigen::Index h = 0; h < H; ++h) out[h] = w.down_bias[h];
      return;
  }
}

}  // namespace

FfnWeights read_expert_f64(const Checkpoint& model, const ModelConfig& c, int layer, int expert) {
  ExpertFfn x = read_expert(model, c, layer, expert);
  auto mat = [](const std::vector<float>& v, int64_t rows, int64_t cols) {
    return MatD(Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(v.data(), rows, cols).cast<double>());
  };
  auto vec = [](const std::vector<float>& v) { return VecD(Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<Eigen::Index>(v.size())).cast<double>()); };
  return FfnWeights{mat(x.gate, x.width, x.hidden), mat(x.up, x.width, x.hidden), mat(x.down, x.hidden, x.width),
                    vec(x.gate_bias), vec(x.up_bias), vec(x.down_bias)};
}

OutputTensor gpt_oss_fused_output(const Checkpoint& model, const ModelConfig& c, int layer, const std::vector<OutputExpert>& experts,
                                  const std::string& out_name, DType dtype, const FusedExpertMerge& merge) {
  const Part part = part_of(out_name);
  const int64_t E = static_cast<int64_t>(experts.size()), H = c.hidden, I = c.expert_intermediate;
  OutputTensor t;
  t.name = out_name;
  t.dtype = dtype;
  t.shape = part == Part::kGateUp ? Shape{E, H, 2 * I} : part == Part::kGateUpBias ? Shape{E, 2 * I} : part == Part::kDown ? Shape{E, I, H} : Shape{E, H};
  t.whole = true;
  // The stored tensor of the same name, when the input has it plain (not MXFP4 blocks): kept
  // experts are copied from it raw when its dtype is the output's.
  const TensorInfo* src = model.find_tensor(gpt_oss_expert_tensor(layer, part_suffix(part)));
  const bool raw = src != nullptr && src->dtype == dtype;
  t.source = "experts of layer " + std::to_string(layer) + (src ? ": rows of " + src->name : ": MXFP4 experts dequantised") + ", merged experts from their members";
  const int64_t width = shape_numel(t.shape) / E;
  const Checkpoint* m = &model;
  const ModelConfig* cfg = &c;
  t.produce = [m, cfg, layer, experts, part, dtype, src, raw, width, merge](int64_t, int64_t, std::byte* out) {
    const size_t row_bytes = static_cast<size_t>(width) * dtype_size(dtype);
    std::vector<double> row(static_cast<size_t>(width));
    for (size_t j = 0; j < experts.size(); ++j) {
      const OutputExpert& e = experts[j];
      std::byte* dst = out + j * row_bytes;
      if (e.members.size() == 1 && raw) {
        copy_rows_raw(*src, e.members[0], e.members[0] + 1, dst);
        continue;
      }
      if (e.members.size() == 1) {
        lay_out(read_expert_f64(*m, *cfg, layer, e.members[0]), part, row.data());
      } else {
        if (!merge) throw Error(ExitCode::kInternal, "no merge function for a merged gpt-oss expert");
        lay_out(*merge(layer, e), part, row.data());
      }
      from_f64(dtype, row.data(), row.size(), dst);
    }
  };
  return t;
}

}  // namespace moeforge
