#include "model/expert_storage.hpp"

#include "core/error.hpp"
#include "formats/mxfp4.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

std::string layer_prefix(int l) { return "model.layers." + std::to_string(l) + ".mlp.experts."; }

// Checks one stored tensor's shape (and dtype when given); the expert axis gets its own message.
void check_shape(const Checkpoint& ckpt, const ModelConfig& c, const TensorInfo& t, const Shape& want, std::optional<DType> dtype = std::nullopt) {
  if (!t.shape.empty() && !want.empty() && t.shape.size() == want.size() && t.shape[0] != want[0])
    throw FormatError(where(ckpt.label(), t.name) + "the fused expert axis holds " + std::to_string(t.shape[0]) + " experts, " +
                      c.label + " says " + c.experts_key + " = " + std::to_string(want[0]) + " (shape " + shape_string(t.shape) +
                      ", expected " + shape_string(want) + "); hint: the config and the weights are of different models, or were pruned apart");
  if (t.shape != want)
    throw FormatError(where(ckpt.label(), t.name) + "shape " + shape_string(t.shape) + ", config.json implies " + shape_string(want) +
                      (t.name.find("_scales") != std::string::npos || t.name.find("_blocks") != std::string::npos
                           ? "; hint: MXFP4 blocks are [experts, rows, columns / 32, 16] and scales [experts, rows, columns / 32]"
                           : ""));
  if (dtype && t.dtype != *dtype)
    throw FormatError(where(ckpt.label(), t.name) + "dtype " + std::string(dtype_name(t.dtype)) + ", MXFP4 tensors are " + std::string(dtype_name(*dtype)));
}

void check_gpt_oss(const Checkpoint& ckpt, const ModelConfig& c, int l) {
  const int64_t E = c.n_experts, H = c.hidden, I = c.expert_intermediate;
  auto need = [&](const std::string& what) -> const TensorInfo& { return ckpt.require_tensor(gpt_oss_expert_tensor(l, what)); };
  if (gpt_oss_mxfp4(ckpt, l)) {
    if (H % kMxfp4Block != 0 || I % kMxfp4Block != 0)
      throw FormatError(c.label + ": MXFP4 experts need hidden_size and intermediate_size divisible by 32 (found " + std::to_string(H) + ", " +
                        std::to_string(I) + ")");
    check_shape(ckpt, c, need("gate_up_proj_blocks"), {E, 2 * I, H / kMxfp4Block, kMxfp4BlockBytes}, DType::kU8);
    check_shape(ckpt, c, need("gate_up_proj_scales"), {E, 2 * I, H / kMxfp4Block}, DType::kU8);
    check_shape(ckpt, c, need("down_proj_blocks"), {E, H, I / kMxfp4Block, kMxfp4BlockBytes}, DType::kU8);
    check_shape(ckpt, c, need("down_proj_scales"), {E, H, I / kMxfp4Block}, DType::kU8);
  } else {
    check_shape(ckpt, c, need("gate_up_proj"), {E, H, 2 * I});
    check_shape(ckpt, c, need("down_proj"), {E, I, H});
  }
  check_shape(ckpt, c, need("gate_up_proj_bias"), {E, 2 * I});
  check_shape(ckpt, c, need("down_proj_bias"), {E, H});
}

// Reads row `e` (one expert) of a tensor whose first axis is the expert axis.
std::vector<float> expert_row_f32(const TensorInfo& t, int e) {
  std::vector<float> out(static_cast<size_t>(t.cols()));
  read_rows_f32(t, e, e + 1, out.data());
  return out;
}

std::vector<uint8_t> expert_row_raw(const TensorInfo& t, int e) {
  std::vector<uint8_t> out(t.nbytes() / static_cast<uint64_t>(t.rows()));
  copy_rows_raw(t, e, e + 1, reinterpret_cast<std::byte*>(out.data()));
  return out;
}

// gate_up rows (output-major [2I, H], gate/up interleaved) into gate and up.
void split_interleaved_rows(const std::vector<float>& rows, ExpertFfn& x) {
  const int64_t I = x.width, H = x.hidden;
  x.gate.resize(static_cast<size_t>(I * H));
  x.up.resize(x.gate.size());
  for (int64_t j = 0; j < I; ++j)
    for (int64_t h = 0; h < H; ++h) {
      x.gate[j * H + h] = rows[(2 * j) * H + h];
      x.up[j * H + h] = rows[(2 * j + 1) * H + h];
    }
}

ExpertFfn read_gpt_oss_expert(const Checkpoint& ckpt, const ModelConfig& c, int l, int e) {
  ExpertFfn x;
  x.width = c.expert_intermediate;
  x.hidden = c.hidden;
  const int64_t I = x.width, H = x.hidden;
  auto tensor = [&](const std::string& what) -> const TensorInfo& { return ckpt.require_tensor(gpt_oss_expert_tensor(l, what)); };
  if (gpt_oss_mxfp4(ckpt, l)) {
    std::vector<float> rows(static_cast<size_t>(2 * I * H));
    auto blocks = expert_row_raw(tensor("gate_up_proj_blocks"), e), scales = expert_row_raw(tensor("gate_up_proj_scales"), e);
    dequantize_mxfp4(blocks.data(), scales.data(), 2 * I, H, rows.data());
    split_interleaved_rows(rows, x);
    x.down.resize(static_cast<size_t>(H * I));
    blocks = expert_row_raw(tensor("down_proj_blocks"), e);
    scales = expert_row_raw(tensor("down_proj_scales"), e);
    dequantize_mxfp4(blocks.data(), scales.data(), H, I, x.down.data());
  } else {
    std::vector<float> gu = expert_row_f32(tensor("gate_up_proj"), e);  // [H, 2I]: x @ W
    std::vector<float> rows(gu.size());
    for (int64_t h = 0; h < H; ++h)
      for (int64_t k = 0; k < 2 * I; ++k) rows[k * H + h] = gu[h * 2 * I + k];
    split_interleaved_rows(rows, x);
    std::vector<float> d = expert_row_f32(tensor("down_proj"), e);  // [I, H]
    x.down.resize(d.size());
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < H; ++h) x.down[h * I + i] = d[i * H + h];
  }
  std::vector<float> b = expert_row_f32(tensor("gate_up_proj_bias"), e);
  for (int64_t j = 0; j < I; ++j) {
    x.gate_bias.push_back(b[2 * j]);
    x.up_bias.push_back(b[2 * j + 1]);
  }
  x.down_bias = expert_row_f32(tensor("down_proj_bias"), e);
  return x;
}

}  // namespace

std::string gpt_oss_expert_tensor(int layer, const std::string& what) { return layer_prefix(layer) + what; }

bool gpt_oss_mxfp4(const Checkpoint& ckpt, int layer) {
  return ckpt.find_tensor(gpt_oss_expert_tensor(layer, "gate_up_proj_blocks")) != nullptr;
}

void check_expert_storage(const Checkpoint& ckpt, const ModelConfig& c) {
  if (!c.is_moe()) return;
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.is_moe_layer(l)) continue;
    if (c.family->expert_kind == ExpertKind::kClampedSwiGlu) {
      check_gpt_oss(ckpt, c, l);
      continue;
    }
    const int64_t E = c.n_experts, H = c.hidden, I = c.expert_intermediate;
    for (const TensorInfo* t : ckpt.fused_expert_tensors()) {
      if (t->name == layer_prefix(l) + "gate_up_proj") check_shape(ckpt, c, *t, {E, 2 * I, H});
      if (t->name == layer_prefix(l) + "down_proj") check_shape(ckpt, c, *t, {E, H, I});
    }
  }
}

ExpertFfn read_expert(const Checkpoint& ckpt, const ModelConfig& c, int layer, int expert) {
  if (c.family->expert_kind == ExpertKind::kClampedSwiGlu) return read_gpt_oss_expert(ckpt, c, layer, expert);
  ExpertFfn x;
  x.width = c.expert_intermediate;
  x.hidden = c.hidden;
  auto read = [&](Proj p, const Shape& shape) {
    const TensorInfo& t = ckpt.require_tensor(expand(find_pattern(*c.family, Role::kExpert, p)->pattern, layer, expert));
    if (t.shape != shape) throw FormatError(where(ckpt.label(), t.name) + "shape " + shape_string(t.shape) + ", config.json implies " + shape_string(shape));
    return read_f32(t);
  };
  x.gate = read(Proj::kGate, {x.width, x.hidden});
  x.up = read(Proj::kUp, {x.width, x.hidden});
  x.down = read(Proj::kDown, {x.hidden, x.width});
  return x;
}

}  // namespace moeforge
