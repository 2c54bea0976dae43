// gpt-oss' fused expert tensors as llama.cpp's gpt-oss stores them, as convert_hf_to_gguf.py's
// GptOssModel writes them: gate_up_proj [E, H, 2I] (gate and up interleaved along 2I) becomes
// ffn_gate_exps / ffn_up_exps [E, I, H], down_proj [E, I, H] becomes ffn_down_exps [E, H, I],
// their biases split likewise; MXFP4 *_blocks/*_scales are repacked into ggml MXFP4 blocks.
#pragma once
#include <cstdint>
#include <vector>

#include "formats/gguf_writer.hpp"
#include "formats/plan.hpp"
#include "model/gguf_arch.hpp"

namespace moeforge {

// The Hugging Face tensors of one GGUF expert tensor: a float weight or bias, or MXFP4 blocks and scales.
struct OssSource {
  const OutputTensor* values = nullptr;  // gate_up_proj, gate_up_proj_bias, down_proj, or the *_blocks
  const OutputTensor* scales = nullptr;  // the *_scales of MXFP4 blocks
  bool mxfp4() const { return scales != nullptr; }
};

// Sorts the members into an OssSource; throws FormatError when blocks come without scales.
OssSource gpt_oss_source(const std::vector<const OutputTensor*>& members, const std::string& gguf_name);
// ggml shape of the GGUF tensor (ne, fastest first).
std::vector<uint64_t> gpt_oss_ne(GgufLayout layout, const OssSource& s);
// GGUF rows per expert (whole experts are produced per call).
int64_t gpt_oss_rows_per_expert(const std::vector<uint64_t>& ne);
// Rows encoded in `type` (MXFP4 sources: always MXFP4, the blocks copied with their nibbles reordered).
GgufProducer gpt_oss_producer(GgufLayout layout, const OssSource& s, GgmlType type, const std::vector<uint64_t>& ne);

}  // namespace moeforge
