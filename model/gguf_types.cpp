#include "model/gguf_types.hpp"

#include <cstdio>

namespace moeforge {
namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int block_of(const std::string& name) {
  int layer = -1;
  return std::sscanf(name.c_str(), "blk.%d.", &layer) == 1 ? layer : -1;
}

bool is_k_quant(GgmlType t) { return t == GgmlType::kQ4_K || t == GgmlType::kQ5_K || t == GgmlType::kQ6_K; }

// llama-quantize's per-tensor adjustments for the file types moeforge writes.
GgmlType mixed(const std::string& name, uint64_t ne0, GgmlType wanted, bool is_output, const GgufTypeContext& c, int attn_v_index) {
  bool medium = wanted == GgmlType::kQ4_K || wanted == GgmlType::kQ5_K;  // Q4_K_M, Q5_K_M
  if (is_output) {
    if (ne0 % ggml_type_info(wanted).block != 0) return GgmlType::kQ8_0;
    return wanted == GgmlType::kQ8_0 ? wanted : GgmlType::kQ6_K;
  }
  if (contains(name, ".attn_v.")) {
    if (medium && use_more_bits(attn_v_index, c.n_attn_v)) wanted = GgmlType::kQ6_K;
    if (c.n_experts == 8) wanted = GgmlType::kQ8_0;
  } else if (contains(name, ".attn_k.")) {
    if (c.n_experts == 8) wanted = GgmlType::kQ8_0;
  } else if (contains(name, "ffn_down")) {
    if (medium && use_more_bits(block_of(name), c.n_layers)) wanted = GgmlType::kQ6_K;
  } else if (contains(name, ".attn_output.")) {
    if (c.n_experts == 8 && wanted == GgmlType::kQ4_K) wanted = GgmlType::kQ5_K;
  }
  return wanted;
}

}  // namespace

bool gguf_stays_f32(const std::string& name, const std::vector<uint64_t>& ne) {
  size_t dims = ne.size();
  while (dims > 1 && ne[dims - 1] == 1) --dims;
  return dims <= 1 || name.ends_with("_norm.weight") || !name.ends_with(".weight") || contains(name, ".ffn_gate_inp") ||
         name == "rope_freqs.weight";
}

GgmlType gguf_tensor_type(const std::string& name, const std::vector<uint64_t>& ne, GgmlType wanted, bool is_output,
                          const GgufTypeContext& ctx, int attn_v_index) {
  if (gguf_stays_f32(name, ne)) return GgmlType::kF32;
  if (wanted == GgmlType::kF32 || wanted == GgmlType::kF16 || wanted == GgmlType::kBF16) return wanted;
  // Q8_0 as the converter writes it; the other types as llama-quantize mixes them.
  if (wanted != GgmlType::kQ8_0) wanted = mixed(name, ne[0], wanted, is_output, ctx, attn_v_index);
  if (ne[0] % ggml_type_info(wanted).block == 0) return wanted;
  if (is_k_quant(wanted) && ne[0] % 32 == 0) return GgmlType::kQ8_0;
  return GgmlType::kF16;
}

}  // namespace moeforge
