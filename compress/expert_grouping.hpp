// Grouping a layer's experts for merging. Each function returns groups of expert indices, ordered
// by their lowest member (the merged expert's index), members ascending.
//   kmeans        k-means++ seeding (seeded), Lloyd iterations, on unit-normalised feature rows
//                 (cosine geometry) — Sub-MoE's clustering of expert outputs
//   hierarchical  average-linkage agglomerative clustering, Euclidean distance — HC-SMoE
//   dominant      the k most-used experts lead; every other expert joins the leader whose
//                 similarity is highest — M-SMoE (router-logit traces)
#pragma once
#include <filesystem>
#include <vector>

#include "engine/calibration_stats.hpp"
#include "model/model_config.hpp"

namespace moeforge {

using Groups = std::vector<std::vector<int>>;

Groups kmeans_groups(const MatD& features, int k, uint64_t seed);
Groups hierarchical_groups(const MatD& features, int k);
Groups dominant_groups(const VecD& usage, const MatD& similarity, int k);

// Cosine similarity of the experts' router-logit traces, from the logit Gram matrix.
MatD logit_trace_similarity(const MatD& logit_gram);

// {"layer": [[experts], [experts], ...]} from a JSON file: every expert of every listed MoE layer
// exactly once. Unlisted layers are returned empty.
std::vector<Groups> read_groups_file(const std::filesystem::path& path, const ModelConfig& model);

Groups sorted_groups(Groups g);

}  // namespace moeforge
