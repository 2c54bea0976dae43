// The stages of a Hugging Face style tokenizer, as data: added tokens split out of the raw text,
// normalizers, pre-tokenizers, the BPE model, the post-processor template and the decoders.
// tokenizer_hf.cpp fills a PipelineSpec from tokenizer.json, tokenizer_gguf.cpp from a GGUF.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/bpe_model.hpp"
#include "text/tokenizer.hpp"
#include "text/tokenizer_regex.hpp"

namespace moeforge {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false, rstrip = false;  // absorb whitespace on that side
  bool single_word = false;             // only when not inside a word
};

struct NormalizeStep {
  enum Kind { kPrepend, kReplace, kNfc, kStrip } kind;
  std::string text, content;            // kPrepend: text; kReplace: text → content (literal)
  std::shared_ptr<SplitRegex> regex;    // kReplace with a regex pattern
  bool left = false, right = false;     // kStrip
};

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext };

struct PreTokenizeStep {
  enum Kind { kSplit, kByteLevel, kMetaspace } kind;
  std::shared_ptr<SplitRegex> regex;    // kSplit; kByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;        // kByteLevel
  std::string replacement = "\xE2\x96\x81";  // kMetaspace: "▁"
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;
  bool split = true;                    // kMetaspace
};

struct DecodeStep {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind;
  std::string text, content;            // kReplace: text → content; kStrip: content; kMetaspace: text = replacement
  int start = 0, stop = 0;              // kStrip
  bool strip_first_space = true;        // kMetaspace (prepend scheme other than never)
};

struct PipelineSpec {
  std::string source;                   // file name, for messages
  std::unique_ptr<BpeModel> model;
  std::vector<AddedToken> added;
  std::vector<NormalizeStep> normalizers;
  std::vector<PreTokenizeStep> pre_tokenizers;
  std::optional<std::vector<DecodeStep>> decoders;  // nullopt: pieces joined with spaces (HF)
  // encode_with_specials: ids before and after the text (e.g. BOS before).
  std::vector<int32_t> prefix_ids, suffix_ids;
  std::optional<int32_t> bos, eos;
  std::string bos_text;
};

std::unique_ptr<Tokenizer> make_pipeline_tokenizer(PipelineSpec spec);

// Loaders (tokenizer_hf.cpp, tokenizer_gguf.cpp). The HF one reads tokenizer_config.json from
// the same directory when it exists.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& tokenizer_json);
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::filesystem::path& gguf);

}  // namespace moeforge
