// Byte-pair encoding of one pre-token ("word") into vocabulary ids. Two merge orders:
//  - ranked merges (Hugging Face tokenizers): the pair with the lowest merge rank is merged first,
//    ties to the left; characters missing from the vocabulary become <0xNN> byte tokens
//    (byte_fallback) or the unknown token (fused when fuse_unk);
//  - scores (SentencePiece as llama.cpp runs it from a GGUF): the adjacent pair whose concatenation
//    is a token with the highest score is merged first; leftovers fall back to <0xNN> bytes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moeforge {

struct BpeOptions {
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a word that is itself a token is emitted whole
  std::optional<int32_t> unk;
  std::string continuing_subword_prefix, end_of_word_suffix;
};

class BpeModel {
 public:
  // pieces[id] = token text; empty strings are holes (ids owned by added tokens).
  BpeModel(std::vector<std::string> pieces, BpeOptions options);

  // Ranked merges. add_merge returns false when left+right is not in the vocabulary.
  bool add_merge(int32_t left, int32_t right, int32_t rank);
  // Score order instead of merges (one score per id).
  void set_scores(std::vector<float> scores);

  std::optional<int32_t> find(std::string_view piece) const;
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  int64_t size() const { return static_cast<int64_t>(pieces_.size()); }
  const BpeOptions& options() const { return options_; }
  std::optional<int32_t> byte_token(uint8_t b) const;

  // Appends the ids of one word (already in the model's alphabet) to out.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // True when no token spans a position where `marker` follows another character: then a text
  // may be cut before each such marker without changing the result (SentencePiece words).
  bool no_token_crosses(std::string_view marker) const;

 private:
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t start, len;  // bytes of the word; len 0 = merged away
  };
  struct Merge {
    int32_t rank, id;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_ranked(std::vector<Symbol>& symbols) const;
  void merge_scored(std::string_view word, std::vector<Symbol>& symbols) const;
  void emit_scored(std::string_view text, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<float> scores_;  // non-empty: score order
  int32_t byte_ids_[256];
  BpeOptions options_;
};

}  // namespace moeforge
