#include "cli/data_options.hpp"

#include <memory>

#include "core/error.hpp"
#include "core/log.hpp"
#include "text/text_data.hpp"
#include "text/tokenizer.hpp"

namespace moeforge {

ParamTable data_params() {
  using T = ParamType;
  return with({
      {.name = "data", .type = T::kPathList,
       .help = "data files: text (.txt, or .jsonl with a \"text\" field or chat \"messages\") read with the model's tokenizer, or token ids "
               "(.jsonl {\"input_ids\": [...]} per line, .bin uint16/uint32)",
       .greedy = true},
      {.name = "bytes", .type = T::kPathList, .help = "files read as bytes, for byte-level models (token id = byte value)", .greedy = true},
  }, window_params());
}

ParamTable window_params() {
  using T = ParamType;
  return {
      {.name = "tokenizer", .type = T::kPath, .help = "tokenizer for text data: model directory, tokenizer.json or .gguf (default: the model's own)"},
      {.name = "split-lines", .type = T::kFlag, .help = "a .txt file holds one document per non-empty line (default: the whole file is one)"},
      {.name = "field", .type = T::kString, .default_value = "text", .help = "the string field of each .jsonl record that holds the text"},
      {.name = "chat-template", .type = T::kString,
       .help = "how each chat message of .jsonl \"messages\" records is written, with {role}, {content} and \\n, "
               "e.g. \"<|im_start|>{role}\\n{content}<|im_end|>\\n\" (default: plain \"role: content\" lines)"},
      {.name = "seq-len", .type = T::kInt, .default_value = "512", .help = "tokens per window; each window is an independent sequence", .min = 1.0},
      {.name = "max-tokens", .type = T::kInt, .default_value = "0", .help = "at most this many tokens per file (0 = all)", .min = 0.0},
      {.name = "id-width", .type = T::kInt, .default_value = "0", .help = "bits per id in .bin files: 16 or 32 (0 = 16 when the vocabulary fits)", .min = 0.0},
  };
}

bool has_data(const ParamValues& p) { return !p.strings("data").empty() || !p.strings("bytes").empty(); }

namespace {

// Reads data files with the options of one command; the tokenizer is loaded at the first text file.
class DataReader {
 public:
  DataReader(const ParamValues& p, int64_t vocab, std::filesystem::path model, bool allow_empty) : p_(p), model_(std::move(model)) {
    o_.seq_len = p.integer("seq-len");
    o_.max_tokens = p.integer("max-tokens");
    o_.id_width = p.count("id-width");
    o_.vocab = vocab;
    o_.allow_empty = allow_empty;
    o_.split_lines = p.flag("split-lines");
    o_.field = p.str("field");
    if (p.has("chat-template")) o_.chat_template = p.str("chat-template");
  }

  DataFile read(const std::filesystem::path& file, DataKind kind) {
    if (kind == DataKind::kTokenIds && std::filesystem::is_regular_file(file) && is_text_data(file)) return load_text(file, tokenizer(), o_);
    return load_data(file, kind, o_);
  }

 private:
  const Tokenizer& tokenizer() {
    if (!tok_) {
      std::filesystem::path from = p_.has("tokenizer") ? std::filesystem::path(p_.str("tokenizer")) : model_;
      tok_ = load_tokenizer(from);
      note("text data: the tokenizer of " + from.string() + " (" + std::to_string(tok_->vocab_size()) + " tokens)");
    }
    return *tok_;
  }

  const ParamValues& p_;
  std::filesystem::path model_;
  TextOptions o_;
  std::unique_ptr<Tokenizer> tok_;
};

}  // namespace

DataSet load_dataset(const ParamValues& p, int64_t vocab, const std::filesystem::path& model) {
  if (!has_data(p)) throw UsageError("no data: pass --data FILE... (text or token ids) or --bytes FILE... (byte-level models)");
  DataReader reader(p, vocab, model, false);
  std::vector<DataFile> files;
  for (const auto& f : p.strings("data")) files.push_back(reader.read(f, DataKind::kTokenIds));
  for (const auto& f : p.strings("bytes")) files.push_back(reader.read(f, DataKind::kBytes));
  return combine(std::move(files));
}

std::vector<DataFile> load_files(const ParamValues& p, const std::string& ids_key, const std::string& bytes_key, int64_t vocab,
                                 const std::filesystem::path& model, bool allow_empty) {
  auto ids = p.strings(ids_key), bytes = p.strings(bytes_key);
  if (!ids.empty() && !bytes.empty())
    throw UsageError("--" + ids_key + " and --" + bytes_key + " cannot be mixed: the order of the files matters");
  DataReader reader(p, vocab, model, allow_empty);
  std::vector<DataFile> files;
  for (const auto& f : ids) files.push_back(reader.read(f, DataKind::kTokenIds));
  for (const auto& f : bytes) files.push_back(reader.read(f, DataKind::kBytes));
  return files;
}

}  // namespace moeforge
