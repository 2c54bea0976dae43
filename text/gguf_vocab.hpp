// A model's vocabulary as llama.cpp reads it from a GGUF file (tokenizer.ggml.*): from a Hugging
// Face tokenizer.json with a BPE model (byte-level → "gpt2" with merges and the pre-tokenizer
// name; SentencePiece style with byte fallback → "llama" with scores from the merge ranks),
// copied from a GGUF input, or, for a model without tokenizer files, one <0xNN> byte token per
// id (what byte-level models such as the fixtures need).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moeforge {

// `source` is the input model (a directory or a .gguf); `config` its config.json (special token
// ids); `vocab_size` the embedding rows. Notes about approximations go to `notes`.
nlohmann::ordered_json gguf_vocabulary(const std::filesystem::path& source, const nlohmann::json& config, int64_t vocab_size,
                                       std::vector<std::string>* notes);

// The byte vocabulary alone: ids 0..255 are the bytes ("<0x00>" ... type BYTE), further ids unused.
nlohmann::ordered_json gguf_byte_vocabulary(const nlohmann::json& config, int64_t vocab_size);

}  // namespace moeforge
