#include "text/batch.hpp"

#include <algorithm>

namespace moeforge {

int64_t Batch::longest() const {
  int64_t m = 0;
  for (const auto& w : windows) m = std::max(m, w.length);
  return m;
}

void Batch::add_window(const int32_t* ids, int64_t length) {
  windows.push_back({n_tokens(), length});
  tokens.insert(tokens.end(), ids, ids + length);
}

std::vector<WindowRange> segment_windows(const Batch& batch, WindowRange range, int64_t max_tokens) {
  std::vector<WindowRange> out;
  for (size_t first = range.first; first < range.last;) {
    size_t last = first;
    int64_t n = 0;
    while (last < range.last && (n == 0 || n + batch.windows[last].length <= max_tokens)) n += batch.windows[last++].length;
    out.push_back({first, last});
    first = last;
  }
  return out;
}

WindowRange split_windows(const Batch& batch, WindowRange range, int part, int parts, int64_t segment_tokens) {
  int64_t total = 0;
  for (size_t w = range.first; w < range.last; ++w) total += batch.windows[w].length;
  WindowRange out{range.last, range.last};
  bool started = false;
  int64_t before = 0;
  for (const WindowRange& seg : segment_windows(batch, range, segment_tokens)) {
    // __int128: parts · before stays exact for any sizes.
    int p = static_cast<int>(static_cast<__int128>(parts) * before / total) + 1;
    if (p == part && !started) {
      out.first = seg.first;
      started = true;
    }
    if (p > part) {
      out.last = seg.first;
      break;
    }
    for (size_t w = seg.first; w < seg.last; ++w) before += batch.windows[w].length;
  }
  if (!started) out.first = out.last;
  return out;
}

Batch slice_windows(const Batch& batch, WindowRange range) {
  Batch out;
  for (size_t w = range.first; w < range.last; ++w) out.add_window(batch.tokens.data() + batch.windows[w].offset, batch.windows[w].length);
  return out;
}

}  // namespace moeforge
