// What calibration statistics were computed from, recorded in the statistics file as "run", so
// that pieces of one calibration made on different processes or machines can be checked and merged:
//   "run": {"model_fingerprint": hex, "options": {window and text options, as the verb gives them},
//           "segment_tokens": the engine's segment size (how windows were grouped; see text/batch.hpp),
//           "datasets": [{"files": [{"path", "kind", "bytes", "sha256"}], "windows": W, "tokens": T,
//                         "pieces": [{"shard": [K, N], "windows": [first, last]}],
//                         "partial": true when merged with --partial while incomplete}]}
// A dataset is the list of data files one observe read (its files are consecutive entries of the
// description's "files"); a piece is the part of its windows [first, last) one run covered:
// shard K of N is split_windows(all windows, K, N, segment_tokens) (text/batch.hpp), 1/1 = all.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "formats/checkpoint.hpp"
#include "text/token_data.hpp"

namespace moeforge {

struct Shard {
  int index = 1, count = 1;  // shard `index` of `count`, 1-based
  std::string label() const { return std::to_string(index) + "/" + std::to_string(count); }
};
// "K/N" with 1 <= K <= N; UsageError otherwise.
Shard parse_shard(const std::string& text);

// SHA-256 over config.json (as parsed) and, for every tensor in name order, its name, dtype,
// shape and the first 256 bytes of its first row (also for views into a GGUF file): cheap for any model size, and different for different
// checkpoints in practice (not a hash of every weight).
std::string model_fingerprint(const Checkpoint& model);

// The run description of one observe over `range` (= the windows of `shard`) of `data`.
nlohmann::json describe_run(const Checkpoint& model, const DataSet& data, Shard shard, WindowRange range, int64_t segment_tokens,
                            const nlohmann::json& options);

}  // namespace moeforge
