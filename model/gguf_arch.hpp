// How each Hugging Face family is stored in GGUF for llama.cpp, as data: its architecture name,
// tensor names (Hugging Face pattern → GGUF pattern, and how the values move between them), and
// the metadata keys convert_hf_to_gguf.py writes from config.json, with llama.cpp's exact key
// types. Used in both directions: writing GGUF, and reading a GGUF under Hugging Face names.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.hpp"

namespace moeforge {

// How a GGUF tensor's rows relate to the Hugging Face tensor(s) it holds.
enum class GgufLayout {
  kPlain,      // the same values; ne is the shape reversed
  kRopePairs,  // llama q/k: per head, HF rotate-half row h·d + j·d/2 + i is GGUF row h·d + 2i + j
  kStacked,    // one matrix per expert ({E}) stacked along a new slowest dimension: ne = [cols, rows, E]
  kKvbK,       // DeepSeek kv_b_proj → attn_k_b: per head the first qk_nope rows, transposed
  kKvbV,       // DeepSeek kv_b_proj → attn_v_b: per head the last v_head_dim rows
  // gpt-oss fused experts (float [E, in, out] or MXFP4 *_blocks/*_scales [E, out, in/32, 16]):
  kOssGate,    // gate_up_proj (and its bias): the even output rows, transposed to [E, I, H]
  kOssUp,      // gate_up_proj (and its bias): the odd output rows
  kOssDown,    // down_proj [E, I, H] transposed to [E, H, I] (MXFP4: as stored)
};

struct GgufTensorName {
  std::string_view hf;    // Hugging Face pattern ({L} layer, {E} expert)
  std::string_view gguf;  // GGUF pattern ({L} block)
  GgufLayout layout = GgufLayout::kPlain;
};

struct GgufArch {
  std::string_view model_type;  // Hugging Face family
  std::string_view arch;        // general.architecture
  bool rope_pairs = false;      // llama.cpp rotates adjacent pairs: q/k rows are permuted
  bool output_required = false; // output.weight must exist (a tied model gets a copy of token_embd)
  bool post_attention_norm = false;  // post_attention_layernorm → post_attention_norm (not ffn_norm)
};

const GgufArch* find_gguf_arch(std::string_view model_type);
// Families for a GGUF architecture name (llama → llama/mistral/mixtral ...).
std::vector<const GgufArch*> gguf_archs_named(std::string_view arch);
std::string supported_gguf_families();

// The GGUF tensor(s) a Hugging Face tensor of this architecture goes to (two for kv_b_proj);
// empty when the name is unknown.
std::vector<GgufTensorName> gguf_names_for(const GgufArch& a, const std::string& hf_name);
// Expands a GGUF pattern for one block.
std::string gguf_name(const GgufTensorName& n, int layer);

// Refuses configs llama.cpp cannot represent (routing rules, GQA OLMoE, dense layers inside a
// Qwen MoE, ...) with the reason; warnings for what llama.cpp silently ignores.
void check_gguf_representable(const GgufArch& a, const ModelConfig& c, std::vector<std::string>* warnings);

// Metadata from config.json in the converter's order, up to general.quantization_version
// (tokenizer keys come after). file_type is a llama_ftype.
nlohmann::ordered_json gguf_model_metadata(const GgufArch& a, const ModelConfig& c, const std::string& name, uint32_t file_type);

// llama3 RoPE scaling is stored as a tensor of per-frequency factors (rope_freqs.weight);
// nullopt when the config has no llama3 scaling.
std::optional<std::vector<float>> llama3_rope_factors(const ModelConfig& c);

}  // namespace moeforge
