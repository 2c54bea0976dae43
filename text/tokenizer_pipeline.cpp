#include "text/tokenizer_pipeline.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "core/error.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace {

const std::string kMetaspace = "\xE2\x96\x81";  // "▁"

struct Segment {
  size_t begin, end;
  int32_t id;  // added token, or -1 for text
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || static_cast<unsigned char>(c) >= 0x80; }

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t at = from.empty() ? std::string::npos : s.find(from);
  if (at == std::string::npos) return;
  std::string out;  // built anew: replacing in place would shift the tail once per match
  out.reserve(s.size() + s.size() / 4);
  size_t last = 0;
  for (; at != std::string::npos; at = s.find(from, last)) {
    out.append(s, last, at - last).append(to);
    last = at + from.size();
  }
  s = out.append(s, last);
}

// Pieces flow to a callback (text, starts at offset 0 of the input) instead of into vectors: a
// 10 MB text has millions of them.
using PieceSink = std::function<void(std::string_view, bool)>;

// Cuts a piece at the spans the regex matches (or at the gaps, inverted) per HF's split behaviors.
void split_piece(std::string_view text, bool at_start, const PreTokenizeStep& step, const PieceSink& emit) {
  size_t pos = 0;  // start of the text not yet emitted
  auto out = [&](size_t b, size_t e) {
    if (e > b) emit(text.substr(b, e - b), at_start && b == 0);
  };
  auto delimiter = [&](size_t b, size_t e) {
    switch (step.behavior) {
      case SplitBehavior::kIsolated: out(pos, b), out(b, e), pos = e; break;
      case SplitBehavior::kRemoved: out(pos, b), pos = e; break;
      case SplitBehavior::kMergedWithPrevious: out(pos, e), pos = e; break;
      case SplitBehavior::kMergedWithNext: out(pos, b), pos = b; break;
    }
  };
  size_t last = 0;  // end of the previous match
  step.regex->for_each_match(text, [&](size_t b, size_t e) {
    if (!step.invert) delimiter(b, e);
    else if (b > last) delimiter(last, b);
    last = e;
  });
  if (step.invert && last < text.size()) delimiter(last, text.size());
  out(pos, text.size());
}

void metaspace_piece(std::string_view piece, bool at_start, const PreTokenizeStep& step, const PieceSink& emit) {
  std::string text(piece);
  replace_all(text, " ", step.replacement);
  bool prepend = step.prepend == PreTokenizeStep::kAlways || (step.prepend == PreTokenizeStep::kFirst && at_start);
  if (prepend && text.compare(0, step.replacement.size(), step.replacement) != 0) text.insert(0, step.replacement);
  if (!step.split) return emit(text, at_start);
  std::string_view t = text;
  size_t begin = 0;  // each piece starts at a replacement character (merged with next)
  for (size_t at = t.find(step.replacement, 1); at != std::string::npos; at = t.find(step.replacement, at + 1)) {
    emit(t.substr(begin, at - begin), at_start && begin == 0);
    begin = at;
  }
  emit(t.substr(begin), at_start && begin == 0);
}

class PipelineTokenizer : public Tokenizer {
 public:
  explicit PipelineTokenizer(PipelineSpec spec) : s_(std::move(spec)) {
    for (const auto& t : s_.added) {
      if (!t.content.empty()) by_first_byte_[static_cast<uint8_t>(t.content[0])].push_back(&t);
      added_by_id_[t.id] = &t;
      vocab_size_ = std::max<int64_t>(vocab_size_, t.id + 1);
    }
    vocab_size_ = std::max(vocab_size_, s_.model->size());
    for (auto& v : by_first_byte_)  // longest first: leftmost-longest matching
      std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) { return a->content.size() > b->content.size(); });
    for (const auto& p : s_.pre_tokenizers) byte_level_ |= p.kind == PreTokenizeStep::kByteLevel;
    cut_metaspace_ = !byte_level_ && !s_.model->options().ignore_merges && s_.model->find(kMetaspace).has_value() &&
                     s_.model->no_token_crosses(kMetaspace);
    count_text_bytes();
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const auto& seg : split_added(text)) {
      if (seg.id >= 0) ids.push_back(seg.id);
      else encode_text(text.substr(seg.begin, seg.end - seg.begin), seg.begin == 0, ids);
    }
    return ids;
  }

  std::vector<int32_t> encode_with_specials(std::string_view text) const override {
    std::vector<int32_t> ids = s_.prefix_ids;
    auto body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.insert(ids.end(), s_.suffix_ids.begin(), s_.suffix_ids.end());
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override;

  std::string piece(int32_t id) const override {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return it->second->content;
    check_model_id(id);
    return s_.model->piece(id);
  }
  uint32_t text_bytes(int32_t id) const override {  // called per token of the data: no string copies
    if (!added_by_id_.contains(id)) check_model_id(id);
    return text_bytes_[static_cast<size_t>(id)];
  }
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos() const override { return s_.bos; }
  std::optional<int32_t> eos() const override { return s_.eos; }
  std::string bos_text() const override { return s_.bos_text; }

 private:
  std::vector<Segment> split_added(std::string_view text) const;
  bool match_added(std::string_view text, size_t pos, const AddedToken** found) const;
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& ids) const;
  void pre_tokenize(size_t step, std::string_view piece, bool at_start, std::vector<int32_t>& ids) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const;
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;
  void count_text_bytes();
  void check_model_id(int32_t id) const {
    if (id < 0 || id >= s_.model->size())
      throw UsageError(s_.source + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size_) + ")");
  }

  PipelineSpec s_;
  std::array<std::vector<const AddedToken*>, 256> by_first_byte_;
  std::unordered_map<int32_t, const AddedToken*> added_by_id_;
  int64_t vocab_size_ = 0;
  std::vector<uint32_t> text_bytes_;  // per id
  bool byte_level_ = false;     // pieces are mapped to the byte alphabet just before the model
  bool cut_metaspace_ = false;  // see BpeModel::no_token_crosses
  // Words seen before: most text reuses a few thousand of them.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> cache_;
  mutable std::mutex cache_mutex_;
};

// A byte-level piece is its bytes; a SentencePiece one has "▁" for a space and <0xNN> for a byte.
void PipelineTokenizer::count_text_bytes() {
  text_bytes_.assign(static_cast<size_t>(vocab_size_), 0);
  for (int32_t id = 0; id < s_.model->size(); ++id) {
    const std::string& p = s_.model->piece(id);
    size_t n = p.size();
    if (byte_level_) {
      if (auto bytes = unicode_to_bytes(p)) n = bytes->size();
    } else if (parse_byte_piece(p)) {
      n = 1;
    } else {
      for (size_t at = p.find(kMetaspace); at != std::string::npos; at = p.find(kMetaspace, at + kMetaspace.size())) n -= kMetaspace.size() - 1;
    }
    text_bytes_[static_cast<size_t>(id)] = static_cast<uint32_t>(n);
  }
  for (const auto& t : s_.added) text_bytes_[static_cast<size_t>(t.id)] = t.special ? 0 : static_cast<uint32_t>(t.content.size());
}

bool PipelineTokenizer::match_added(std::string_view text, size_t pos, const AddedToken** found) const {
  for (const AddedToken* t : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    if (text.compare(pos, t->content.size(), t->content) != 0) continue;
    size_t end = pos + t->content.size();
    if (t->single_word && ((pos > 0 && is_word_char(text[pos - 1])) || (end < text.size() && is_word_char(text[end])))) continue;
    *found = t;
    return true;
  }
  return false;
}

std::vector<Segment> PipelineTokenizer::split_added(std::string_view text) const {
  std::vector<Segment> out;
  size_t start = 0;  // of the pending text segment
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* t = nullptr;
    if (by_first_byte_[static_cast<uint8_t>(text[pos])].empty() || !match_added(text, pos, &t)) {
      ++pos;
      continue;
    }
    size_t b = pos, e = pos + t->content.size();
    if (t->lstrip)
      while (b > start && is_space(text[b - 1])) --b;
    if (t->rstrip)
      while (e < text.size() && is_space(text[e])) ++e;
    if (b > start) out.push_back({start, b, -1});
    out.push_back({b, e, t->id});
    pos = start = e;
  }
  if (start < text.size()) out.push_back({start, text.size(), -1});
  return out;
}

void PipelineTokenizer::encode_text(std::string_view text, bool at_start, std::vector<int32_t>& ids) const {
  std::string normalized(text);
  for (const auto& n : s_.normalizers) {
    switch (n.kind) {
      case NormalizeStep::kPrepend:
        if (!normalized.empty()) normalized.insert(0, n.text);
        break;
      case NormalizeStep::kReplace:
        if (n.regex) {
          std::string out;
          size_t last = 0;
          n.regex->for_each_match(normalized, [&](size_t b, size_t e) { out.append(normalized, last, b - last).append(n.content), last = e; });
          normalized = out.append(normalized, last);
        } else {
          replace_all(normalized, n.text, n.content);
        }
        break;
      case NormalizeStep::kNfc: normalized = nfc(normalized); break;
      case NormalizeStep::kStrip: {
        size_t b = 0, e = normalized.size();
        while (n.left && b < e && is_space(normalized[b])) ++b;
        while (n.right && e > b && is_space(normalized[e - 1])) --e;
        normalized = normalized.substr(b, e - b);
        break;
      }
    }
  }
  pre_tokenize(0, normalized, at_start, ids);
}

// Runs pre-tokenizer `step` on a piece and hands what comes out to the next step; after the
// last, to the model.
void PipelineTokenizer::pre_tokenize(size_t step, std::string_view piece, bool at_start, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (step == s_.pre_tokenizers.size()) return encode_piece(piece, ids);
  const PreTokenizeStep& st = s_.pre_tokenizers[step];
  PieceSink next = [&](std::string_view p, bool start) { pre_tokenize(step + 1, p, start, ids); };
  if (st.kind == PreTokenizeStep::kMetaspace) return metaspace_piece(piece, at_start, st, next);
  std::string prefixed;
  if (st.kind == PreTokenizeStep::kByteLevel && st.add_prefix_space && piece.front() != ' ') piece = prefixed = " " + std::string(piece);
  if (st.regex) split_piece(piece, at_start, st, next);
  else next(piece, at_start);
}

// SentencePiece texts come as one long word; cutting it before each "▁" that follows another
// character gives the same tokens (no token spans such a cut) and lets the cache work.
void PipelineTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (!cut_metaspace_) return encode_word(piece, ids);
  std::string_view w = piece;
  size_t begin = 0;
  for (size_t at = w.find(kMetaspace, 1); at != std::string::npos; at = w.find(kMetaspace, at + 1)) {
    bool in_run = at >= kMetaspace.size() && w.compare(at - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
    if (in_run) continue;
    encode_word(w.substr(begin, at - begin), ids);
    begin = at;
  }
  encode_word(w.substr(begin), ids);
}

void PipelineTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  constexpr size_t kMaxCachedWord = 128, kMaxCacheEntries = 1 << 20;
  bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> out;
  if (byte_level_) s_.model->encode_word(bytes_to_unicode(word), out);
  else s_.model->encode_word(word, out);
  ids.insert(ids.end(), out.begin(), out.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(out));
  }
}

// HF ByteFallback: a run of <0xNN> tokens becomes its bytes when they are valid UTF-8, else one
// U+FFFD per byte.
void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string run;
  size_t run_len = 0;
  auto flush = [&] {
    if (run_len == 0) return;
    if (is_valid_utf8(run)) out.push_back(run);
    else
      for (size_t i = 0; i < run_len; ++i) out.push_back("\xEF\xBF\xBD");
    run.clear();
    run_len = 0;
  };
  for (auto& t : tokens) {
    if (auto b = parse_byte_piece(t)) {
      run += static_cast<char>(*b);
      ++run_len;
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens.swap(out);
}

void apply_decoder(const DecodeStep& d, std::vector<std::string>& tokens) {
  switch (d.kind) {
    case DecodeStep::kByteLevel:
      for (auto& t : tokens)
        if (auto bytes = unicode_to_bytes(t)) t = std::move(*bytes);  // else kept as written (HF)
      break;
    case DecodeStep::kReplace:
      for (auto& t : tokens) replace_all(t, d.text, d.content);
      break;
    case DecodeStep::kByteFallback: byte_fallback(tokens); break;
    case DecodeStep::kFuse: {
      std::string all;
      for (const auto& t : tokens) all += t;
      tokens.assign(1, all);
      break;
    }
    case DecodeStep::kStrip:
      for (auto& t : tokens) {
        for (int i = 0; i < d.start && t.compare(0, d.content.size(), d.content) == 0; ++i) t.erase(0, d.content.size());
        for (int i = 0; i < d.stop && t.size() >= d.content.size() && t.compare(t.size() - d.content.size(), d.content.size(), d.content) == 0; ++i)
          t.erase(t.size() - d.content.size());
      }
      break;
    case DecodeStep::kMetaspace:
      for (size_t i = 0; i < tokens.size(); ++i) {
        replace_all(tokens[i], d.text, " ");
        if (i == 0 && d.strip_first_space && tokens[i].compare(0, 1, " ") == 0) tokens[i].erase(0, 1);
      }
      break;
  }
}

std::string PipelineTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.push_back(piece(id));
  std::string out;
  if (!s_.decoders) {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const auto& d : *s_.decoders) apply_decoder(d, tokens);
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace

std::unique_ptr<Tokenizer> make_pipeline_tokenizer(PipelineSpec spec) { return std::make_unique<PipelineTokenizer>(std::move(spec)); }

}  // namespace moeforge
