// The pre-tokenizers' split regexes (GPT-2, Llama-3, Qwen2 …) through PCRE2 in UTF mode with
// Unicode properties (\p{L}, \p{N}) and JIT compilation. Invalid UTF-8 in the text never
// matches, so such bytes end up in the gaps between matches instead of failing the match.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace moeforge {

class SplitRegex {
 public:
  // `where` names the file and entry for the error when the pattern does not compile.
  SplitRegex(const std::string& pattern, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Calls fn(begin, end) for each non-empty match, left to right, as find-all does.
  void for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& fn) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
};

// Split patterns of the well-known byte-level tokenizers, exactly as their tokenizer.json files
// write them (the GGUF loader picks one from tokenizer.ggml.pre).
extern const char* const kGpt2SplitPattern;
extern const char* const kLlama3SplitPattern;
extern const char* const kQwen2SplitPattern;
extern const char* const kGpt4oSplitPattern;

}  // namespace moeforge
