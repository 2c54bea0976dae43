// Short names for plot titles and labels: a checkpoint's last path component instead of its long
// path, and the shortest path endings that still tell several files apart
// ("corpora/en/eval.txt", "corpora/de/eval.txt" → "en/eval.txt", "de/eval.txt").
#pragma once
#include <string>
#include <vector>

namespace moeforge {

// "…/models/tiny-mixtral/" → "tiny-mixtral".
std::string short_path_name(const std::string& path);
// For each path the fewest trailing components that no other path shares (the whole path when
// two are equal).
std::vector<std::string> distinct_path_labels(const std::vector<std::string>& paths);
// At most `max` code points: longer text keeps its beginning and ends in "…".
std::string ellipsize(const std::string& text, size_t max);

}  // namespace moeforge
