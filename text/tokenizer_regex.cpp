#include "text/tokenizer_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {

const char* const kGpt2SplitPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// o200k (GPT-4o, gpt-oss): cased words keep their contraction, and '/' joins a punctuation run's line breaks.
const char* const kGpt4oSplitPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct SplitRegex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where) : impl_(std::make_unique<Impl>()), pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  // UCP: \s, \w and \d follow Unicode properties, as the Rust and Oniguruma engines HF uses.
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &offset, nullptr);
  if (impl_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(err, message, sizeof message);
    throw FormatError(where + "regex " + pattern + " does not compile at offset " + std::to_string(offset) + ": " +
                      reinterpret_cast<const char*>(message));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::~SplitRegex() { pcre2_code_free(impl_->code); }

namespace {

// Per-call match state: match data, a JIT stack large enough for long whitespace runs with
// look-ahead (the default 32 KB is not), and the context that hands the stack to the matcher.
struct MatchScratch {
  pcre2_match_data* data;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context;
  MatchScratch(const pcre2_code* code, bool jit)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)), context(pcre2_match_context_create(nullptr)) {
    if (jit) stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (stack != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_match_context_free(context);
    if (stack != nullptr) pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

}  // namespace

void SplitRegex::for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& fn) const {
  MatchScratch m(impl_->code, impl_->jit);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (size_t pos = 0; pos < text.size();) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, 0, m.data, m.context)
                        : pcre2_match(impl_->code, subject, text.size(), pos, 0, m.data, m.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_JIT, m.data, m.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw UnsupportedError("split regex " + pattern_ + ": PCRE2 error " + std::to_string(rc) + " at byte " + std::to_string(pos));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    size_t begin = ov[0], end = ov[1];
    if (end == begin) {  // empty match: step over one character
      pos = begin + utf8_char_len(text, begin);
      continue;
    }
    fn(begin, end);
    pos = end;
  }
}

}  // namespace moeforge
