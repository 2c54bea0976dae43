// A GGUF file (or llama.cpp split files) opened as a Checkpoint under Hugging Face names, so the
// engine, observe, prune and merge code read it unchanged: config.json is derived from the
// metadata, every expert of a stacked blk.N.ffn_*_exps tensor is a view of its slab, llama's q/k
// rows are put back in Hugging Face order, and quantised blocks (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K,
// MXFP4) are decoded to float32 when read. Views also expose their stored blocks, so a GGUF
// written from them copies kept tensors byte for byte.
#pragma once
#include <filesystem>
#include <memory>

#include "formats/checkpoint.hpp"

namespace moeforge {

// Throws FormatError for a malformed file and UnsupportedError for architectures, tensors or
// types it cannot present (naming the file, the key or tensor, and what is supported).
std::unique_ptr<Checkpoint> open_gguf_checkpoint(const std::filesystem::path& path);

// The Hugging Face config.json a GGUF's metadata describes (exposed for tests).
nlohmann::json gguf_hf_config(const std::filesystem::path& path);

}  // namespace moeforge
