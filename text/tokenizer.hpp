// Text → token ids with the tokenizer a checkpoint ships, so calibration data and prompts can be
// plain text. Supported: Hugging Face tokenizer.json with a BPE model (byte-level as GPT-2 /
// Llama-3 / Qwen2, or SentencePiece style with byte fallback), the vocabulary of a GGUF file
// (tokenizer.ggml.*, models "llama" and "gpt2"), and raw bytes for byte-level models.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Added tokens written in the text (e.g. "<|im_start|>") are matched; nothing is added.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual std::string piece(int32_t id) const = 0;  // token text as stored in the vocab
  // Bytes of text the token stands for (0 for special tokens): bits per byte of text data.
  virtual uint32_t text_bytes(int32_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos() const = 0;
  virtual std::optional<int32_t> eos() const = 0;
  virtual std::string bos_text() const = 0;  // "" when there is no BOS token
  // encode() plus the post-processor's special tokens (e.g. BOS for Llama), as HF's tokenizer(text).
  virtual std::vector<int32_t> encode_with_specials(std::string_view text) const = 0;
};

// Accepts a model directory (tokenizer.json + tokenizer_config.json), a tokenizer.json path or a
// .gguf file. A directory without tokenizer.json whose config.json says vocab_size 256 gets the
// raw-bytes tokenizer. Throws FormatError naming the file and the bad entry.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_or_file);

std::unique_ptr<Tokenizer> byte_tokenizer();  // id = byte value, 256 tokens, no BOS/EOS

}  // namespace moeforge
