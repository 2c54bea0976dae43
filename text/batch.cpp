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

}  // namespace moeforge
