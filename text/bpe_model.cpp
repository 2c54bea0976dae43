#include "text/bpe_model.hpp"

#include <algorithm>

#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace {

uint64_t pair_key(int32_t left, int32_t right) { return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right); }

// Heap entries; the scratch vectors live per thread so encode_word allocates nothing in the loop.
struct RankedEntry {
  int32_t rank, pos, id;
  // std::push_heap builds a max-heap: "less" means lower priority = higher rank, then later pos.
  bool operator<(const RankedEntry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};
struct ScoredEntry {
  float score;
  int32_t left, right;
  uint32_t size;
  bool operator<(const ScoredEntry& o) const { return score != o.score ? score < o.score : left > o.left; }
};

}  // namespace

BpeModel::BpeModel(std::vector<std::string> pieces, BpeOptions options) : pieces_(std::move(pieces)), options_(std::move(options)) {
  ids_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (!pieces_[i].empty()) ids_.emplace(pieces_[i], static_cast<int32_t>(i));  // first id wins
  for (int b = 0; b < 256; ++b) {
    auto id = find(byte_piece(static_cast<uint8_t>(b)));
    byte_ids_[b] = id ? *id : -1;
  }
}

bool BpeModel::add_merge(int32_t left, int32_t right, int32_t rank) {
  std::string_view r = piece(right);
  // With a continuing-subword prefix ("##"), the right part loses it when merged.
  const std::string& prefix = options_.continuing_subword_prefix;
  if (!prefix.empty() && r.substr(0, prefix.size()) == prefix) r.remove_prefix(prefix.size());
  auto id = find(piece(left) + std::string(r));
  if (!id) return false;
  merges_.emplace(pair_key(left, right), Merge{rank, *id});  // a repeated pair keeps its first rank
  return true;
}

void BpeModel::set_scores(std::vector<float> scores) { scores_ = std::move(scores); }

std::optional<int32_t> BpeModel::find(std::string_view piece) const {
  auto it = ids_.find(piece);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> BpeModel::byte_token(uint8_t b) const {
  if (byte_ids_[b] < 0) return std::nullopt;
  return byte_ids_[b];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

bool BpeModel::no_token_crosses(std::string_view marker) const {
  for (const auto& p : pieces_)
    for (size_t at = p.find(marker, 1); at != std::string::npos; at = p.find(marker, at + 1))
      if (at < marker.size() || p.compare(at - marker.size(), marker.size(), marker) != 0) return false;
  return true;
}

// Characters → symbols, as HF's BPE builds a word: vocabulary lookup (with the subword prefix
// and end-of-word suffix), else byte tokens, else the (fused) unknown token, else dropped.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  symbols.clear();
  const auto& o = options_;
  std::string key;
  for (size_t pos = 0; pos < word.size();) {
    size_t n = utf8_char_len(word, pos);
    std::string_view ch = word.substr(pos, n);
    std::optional<int32_t> id;
    if ((o.continuing_subword_prefix.empty() || pos == 0) && (o.end_of_word_suffix.empty() || pos + n < word.size())) {
      id = find(ch);
    } else {
      key = (pos > 0 ? o.continuing_subword_prefix : "") + std::string(ch) + (pos + n == word.size() ? o.end_of_word_suffix : "");
      id = find(key);
    }
    auto push = [&](int32_t token, uint32_t len) {
      int32_t i = static_cast<int32_t>(symbols.size());
      symbols.push_back({token, i - 1, i + 1, static_cast<uint32_t>(pos), len});
    };
    bool done = false;
    if (id) {
      push(*id, static_cast<uint32_t>(n));
      done = true;
    } else if (o.byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char c) { return byte_ids_[static_cast<uint8_t>(c)] >= 0; })) {
      for (char c : ch) push(byte_ids_[static_cast<uint8_t>(c)], 1);
      done = true;
    }
    if (!done && o.unk) {
      if (o.fuse_unk && !symbols.empty() && symbols.back().id == *o.unk) symbols.back().len += static_cast<uint32_t>(n);
      else push(*o.unk, static_cast<uint32_t>(n));
    }
    pos += n;
  }
  if (!symbols.empty()) symbols.back().next = -1;
}

// HF's merge loop: lowest rank first, ties to the leftmost; an entry is stale when its left
// symbol is gone or the pair now merges into a different token.
void BpeModel::merge_ranked(std::vector<Symbol>& symbols) const {
  thread_local std::vector<RankedEntry> heap;
  heap.clear();
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) heap.push_back({m->rank, static_cast<int32_t>(i), m->id});
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    RankedEntry top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(cur.next)];
    const Merge* m = find_merge(cur.id, right.id);
    if (m == nullptr || m->id != top.id) continue;
    cur.id = top.id;
    cur.len += right.len;
    cur.next = right.next;
    right.len = 0;
    if (cur.next >= 0) symbols[static_cast<size_t>(cur.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (const Merge* p = find_merge(symbols[static_cast<size_t>(cur.prev)].id, cur.id)) {
        heap.push_back({p->rank, cur.prev, p->id});
        std::push_heap(heap.begin(), heap.end());
      }
    if (cur.next >= 0)
      if (const Merge* p = find_merge(cur.id, symbols[static_cast<size_t>(cur.next)].id)) {
        heap.push_back({p->rank, top.pos, p->id});
        std::push_heap(heap.begin(), heap.end());
      }
  }
}

// llama.cpp's SentencePiece loop: the bigram whose text is the best-scored token merges first,
// ties to the leftmost; an entry is stale when either side changed length.
void BpeModel::merge_scored(std::string_view word, std::vector<Symbol>& symbols) const {
  thread_local std::vector<ScoredEntry> heap;
  heap.clear();
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const Symbol& r = symbols[static_cast<size_t>(right)];
    auto id = find(word.substr(l.start, l.len + r.len));
    if (!id || static_cast<size_t>(*id) >= scores_.size()) return;
    heap.push_back({scores_[static_cast<size_t>(*id)], left, right, l.len + r.len});
    std::push_heap(heap.begin(), heap.end());
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    ScoredEntry top = heap.back();
    heap.pop_back();
    Symbol& l = symbols[static_cast<size_t>(top.left)];
    Symbol& r = symbols[static_cast<size_t>(top.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != top.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = top.left;
    try_add(l.prev, top.left);
    try_add(top.left, l.next);
  }
}

// A symbol left after score merging: its token, else its bytes as <0xNN> tokens, else unknown.
void BpeModel::emit_scored(std::string_view text, std::vector<int32_t>& out) const {
  if (auto id = find(text)) {
    out.push_back(*id);
    return;
  }
  for (char c : text) {
    int32_t b = byte_ids_[static_cast<uint8_t>(c)];
    if (b >= 0) out.push_back(b);
    else if (options_.unk) out.push_back(*options_.unk);
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges)
    if (auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  thread_local std::vector<Symbol> symbols;
  if (!scores_.empty()) {
    symbols.clear();
    for (size_t pos = 0; pos < word.size();) {
      uint32_t n = static_cast<uint32_t>(utf8_char_len(word, pos));
      int32_t i = static_cast<int32_t>(symbols.size());
      symbols.push_back({-1, i - 1, i + 1, static_cast<uint32_t>(pos), n});
      pos += n;
    }
    symbols.back().next = -1;
    merge_scored(word, symbols);
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next)
      emit_scored(word.substr(symbols[static_cast<size_t>(i)].start, symbols[static_cast<size_t>(i)].len), out);
    return;
  }
  initial_symbols(word, symbols);
  merge_ranked(symbols);
  for (const auto& s : symbols)
    if (s.len > 0) out.push_back(s.id);
}

}  // namespace moeforge
