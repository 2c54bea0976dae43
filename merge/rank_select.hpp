// Selection of the elements at given ranks of a tensor too large to hold, in streamed passes with
// memory independent of its size (top-k pruning, breadcrumbs, quantiles). Elements are ordered by
// value (ascending or descending), equal values by flat index ascending — torch's stable order,
// which mergekit's small-tensor sorts follow. Pass 0 counts the top 16 bits of every value's
// order key, pass 1 the low 16 bits inside the buckets that hold a wanted rank (and keeps those
// buckets' elements when there are at most a million), and pass 2 — only when several elements
// share the selected value and its bucket was too full to keep — finds the wanted occurrence.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

namespace moeforge {

// Maps a float to an unsigned key with the same order (negative < −0 < +0 < positive; NaN last).
inline uint32_t order_key(float v) {
  uint32_t bits;
  __builtin_memcpy(&bits, &v, 4);
  // Branch-free (it vectorises): negative → ~bits, positive → bits with the top bit set.
  return bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
}

// The element at one rank: its key, and the flat index of that occurrence among equal values
// (kAnyIndex when the value is unique, so comparing keys alone decides).
struct RankCut {
  static constexpr int64_t kAnyIndex = std::numeric_limits<int64_t>::max();
  uint32_t key = 0;
  int64_t index = kAnyIndex;
  float value() const;
};

// True when (key, index) comes at or before the cut in the order (value then index).
inline bool at_or_before(uint32_t key, int64_t index, const RankCut& c, bool descending) {
  if (key != c.key) return descending ? key > c.key : key < c.key;
  return c.index == RankCut::kAnyIndex || index <= c.index;
}

class RankSelect {
 public:
  // n elements; ranks are 0-based positions in the order. They may also be given after pass 0
  // (set_ranks), when they depend on counts taken during it.
  // keep_limit: the most elements of one bucket pass 1 keeps (tests lower it to force pass 2).
  RankSelect(int64_t n, std::vector<int64_t> ranks, bool descending, uint64_t keep_limit = uint64_t{1} << 20);
  void set_ranks(std::vector<int64_t> ranks);
  // The pass that wants data next (0, 1, 2), or -1 when the cuts are known.
  int pass() const { return pass_; }
  // Feeds the next `count` values, whose first has flat index `first` (blocks in increasing order).
  void feed(const float* values, size_t count, int64_t first);
  void end_pass();
  const RankCut& cut(size_t i) const { return cuts_[i]; }

 private:
  struct Wanted {
    int64_t rank;
    uint32_t bucket = 0;       // top 16 bits of the key
    int64_t before = 0;        // elements strictly before the bucket (pass 0) / the value (pass 1)
    int64_t occurrence = 0;    // which of the equal values (pass 2 counter target)
    int64_t seen = 0;
    bool needs_index = false;
  };
  void end_high();
  void end_low();
  void find_kept(size_t i);
  int64_t n_;
  bool descending_;
  uint64_t keep_limit_;
  int pass_ = 0;
  std::vector<Wanted> wanted_;
  std::vector<RankCut> cuts_;
  void flush_high();
  std::vector<uint64_t> high_;
  std::vector<uint32_t> high32_;  // pass 0 counts in 32 bits (a smaller table stays in cache), flushed before they can overflow
  uint64_t unflushed_ = 0;
  std::map<uint32_t, std::vector<uint64_t>> low_;  // bucket → histogram of the low 16 bits
  std::map<uint32_t, std::vector<std::pair<uint32_t, int64_t>>> kept_;  // bucket → its elements (key, index), in order
};

}  // namespace moeforge
