// Merging statistics files: pieces of one calibration (shards of the same data, from
// `observe --shard K/N` or separate runs) and calibrations of different data (another domain).
// The rules (README "Scale-out calibration"):
//   - every input must describe the same model (shape, family and fingerprint), the same
//     options and the same statistics (tensor names and shapes);
//   - inputs over the same data (same files by SHA-256, same windows) are pieces of one dataset:
//     their window ranges must not overlap (duplicate shards are refused) and, unless `partial`,
//     must cover every window — missing shards are named;
//   - a data file may not appear in two different datasets (its tokens would count twice);
//   - pieces are folded in window order whatever the order of the inputs (sums added, maxima
//     maxed, see stats_tensors.hpp); datasets keep the order in which they first appear.
// Counts, token totals and maxima are exact; sums of values equal one observe over all the
// data up to float64 rounding of the changed summation order (≤ 1e-9 relative per tensor).
#pragma once
#include <string>
#include <vector>

#include "engine/stats_tensors.hpp"

namespace moeforge {

struct StatsInput {
  std::string label;  // the file, for messages
  StatsTensors stats;
};

struct MergeOutcome {
  StatsTensors stats;
  std::vector<std::string> incomplete;  // one line per dataset left incomplete (only with `partial`)
};

MergeOutcome merge_stats(const std::vector<StatsInput>& inputs, bool partial);

}  // namespace moeforge
