// Plain-text calibration data and prompts → token windows, with the model's tokenizer.
// Inputs: .txt (the whole file is one document, or one document per non-empty line with
// split_lines) and .jsonl (one document per line: a string field, "text" unless told otherwise,
// or chat "messages" [{role, content}] rendered as "role: content" lines, or through a simple
// per-message template such as "<|im_start|>{role}\n{content}<|im_end|>\n"). Each document is
// tokenized as HF's tokenizer(text) does (empty ones are skipped), documents are joined with EOS
// and cut into windows.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "text/token_data.hpp"
#include "text/tokenizer.hpp"

namespace moeforge {

struct TextOptions : DataOptions {  // window options, plus how a file splits into documents
  bool split_lines = false;
  std::string field = "text";
  std::string chat_template;  // per message, {role} and {content}; empty: "role: content" lines
};

// Whether --data holds text (for the tokenizer) or token ids: .bin is ids; .jsonl/.json is ids
// when its first record is an id array or has "input_ids"; every other file is text.
bool is_text_data(const std::filesystem::path& path);

// The documents of a text or JSONL file, in order. Throws FormatError naming file:line.
std::vector<std::string> read_text_documents(const std::filesystem::path& path, const TextOptions& o);

// Tokenized with encode_with_specials, EOS between documents (when the tokenizer has one),
// packed into consecutive windows of seq_len tokens (the last may be shorter), every id checked
// against the model's vocabulary (o.vocab). Kind kTokenIds.
DataFile load_text(const std::filesystem::path& path, const Tokenizer& tok, const TextOptions& o);

// mergekit-moe prompts: the BOS token's text prefixed, then encode() without adding specials, so
// the BOS text is matched as an added token.
std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, std::string_view prompt);

}  // namespace moeforge
