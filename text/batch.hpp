// Token windows for the forward engine: one flat list of token ids and the windows cut from it.
// Each window is an independent sequence starting at position 0.
#pragma once
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

}  // namespace moeforge
