// Which ggml type each GGUF tensor gets, as llama.cpp decides: the converter keeps norms, biases,
// routers and 1-D tensors in F32 and gives the rest the output type (F16 when Q8_0 rows are not
// whole blocks); llama-quantize's mix for the K-quants (q4_k and q5_k are its Q4_K_M and Q5_K_M:
// Q6_K for the output and for some attn_v / ffn_down layers; with 8 experts attn_k/attn_v Q8_0
// and attn_output Q5_K) and its fallbacks when rows are not whole 256-blocks (Q8_0 here where
// llama.cpp would pick Q5_0/Q5_1, which moeforge does not write).
#pragma once
#include <string>
#include <vector>

#include "formats/ggml_types.hpp"

namespace moeforge {

struct GgufTypeContext {
  int n_layers = 0;
  int n_experts = 0;
  int n_attn_v = 0;  // attn_v tensors in the file (llama-quantize counts them in file order)
};

// `attn_v_index`: this tensor's position among the attn_v tensors (−1 for others).
GgmlType gguf_tensor_type(const std::string& gguf_name, const std::vector<uint64_t>& ne, GgmlType wanted, bool is_output,
                          const GgufTypeContext& ctx, int attn_v_index);
bool gguf_stays_f32(const std::string& gguf_name, const std::vector<uint64_t>& ne);

}  // namespace moeforge
