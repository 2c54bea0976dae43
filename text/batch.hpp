// Token windows for the forward engine: one flat list of token ids and the windows cut from it.
// Each window is an independent sequence starting at position 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moeforge {

struct Window {
  int64_t offset = 0;  // into Batch::tokens
  int64_t length = 0;
};

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<Window> windows;

  int64_t n_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t longest() const;
  void add_window(const int32_t* ids, int64_t length);
};

// Consecutive windows [first, last) of a batch.
struct WindowRange {
  size_t first = 0, last = 0;
  size_t size() const { return last - first; }
  bool operator==(const WindowRange&) const = default;
};

// The segments of `range`: groups of consecutive windows holding at most `max_tokens` tokens (a
// longer window is a segment alone), formed greedily from range.first. The forward engine computes
// a segment's windows together, so a token's values depend only on its segment; and segments
// formed from any segment boundary are the same as those formed from the start.
std::vector<WindowRange> segment_windows(const Batch& batch, WindowRange range, int64_t max_tokens);

// Part `part` (1-based) of `parts` of `range`, in whole segments balanced by tokens: segment s
// goes to part ⌊parts · b / T⌋ + 1, where b is the number of the range's tokens before s and T all
// of the range's tokens. Parts are consecutive, disjoint and together the whole range; the split
// depends only on the window lengths (not on threads or machines). A part is empty when segments
// are fewer than parts. Splitting a part again splits it at the same segment boundaries.
WindowRange split_windows(const Batch& batch, WindowRange range, int part, int parts, int64_t segment_tokens);

// The windows of `range` as a batch of their own (tokens copied, offsets from 0).
Batch slice_windows(const Batch& batch, WindowRange range);

}  // namespace moeforge
