// load_tokenizer: which loader a path needs; and the raw-bytes tokenizer of byte-level models.
#include "text/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "formats/gguf.hpp"
#include "text/tokenizer_pipeline.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace {

namespace fs = std::filesystem;

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<uint8_t>(text[i]);
    return ids;
  }
  std::vector<int32_t> encode_with_specials(std::string_view text) const override { return encode(text); }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out(ids.size(), '\0');
    for (size_t i = 0; i < ids.size(); ++i) out[i] = static_cast<char>(check(ids[i]));
    return out;
  }
  // Printable ASCII as itself, every other byte as <0xNN> (keeps listings and JSON readable).
  std::string piece(int32_t id) const override {
    uint8_t b = check(id);
    return b > ' ' && b < 0x7F ? std::string(1, static_cast<char>(b)) : byte_piece(b);
  }
  uint32_t text_bytes(int32_t) const override { return 1; }
  int64_t vocab_size() const override { return 256; }
  std::optional<int32_t> bos() const override { return std::nullopt; }
  std::optional<int32_t> eos() const override { return std::nullopt; }
  std::string bos_text() const override { return ""; }

 private:
  static uint8_t check(int32_t id) {
    if (id < 0 || id > 255) throw UsageError("byte tokenizer: token id " + std::to_string(id) + " is outside the vocabulary [0, 256)");
    return static_cast<uint8_t>(id);
  }
};

// config.json of a byte-level model: vocab_size 256.
bool is_byte_model(const fs::path& config) {
  std::error_code ec;
  if (!fs::exists(config, ec)) return false;
  auto j = nlohmann::json::parse(read_regular_file(config), nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("vocab_size") && j["vocab_size"] == 256;
}

std::unique_ptr<Tokenizer> load_from_directory(const fs::path& dir) {
  if (fs::is_regular_file(dir / "tokenizer.json")) return load_hf_tokenizer(dir / "tokenizer.json");
  if (fs::exists(dir / "tokenizer.model"))
    throw UnsupportedError((dir / "tokenizer.model").string() +
                           ": SentencePiece model files are not read; expected tokenizer.json beside it (hint: save the tokenizer with "
                           "transformers' save_pretrained, or pass --tokenizer PATH)");
  if (is_byte_model(dir / "config.json")) return byte_tokenizer();
  throw IoError(dir.string() + ": no tokenizer.json, and config.json does not describe a byte-level model (vocab_size 256); hint: pass --tokenizer PATH");
}

}  // namespace

std::unique_ptr<Tokenizer> byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  if (fs::is_directory(path)) return load_from_directory(path);
  require_regular_file(path);
  if (looks_like_gguf(path)) return load_gguf_tokenizer(path);
  if (path.extension() == ".gguf") throw FormatError(path.string() + ": bad magic (expected \"GGUF\"); hint: not a GGUF file");
  if (path.filename() == "tokenizer_config.json") return load_hf_tokenizer(path.parent_path() / "tokenizer.json");
  return load_hf_tokenizer(path);
}

}  // namespace moeforge
