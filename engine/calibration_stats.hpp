// Calibration statistics, accumulated exactly (float64 sums and counts, merged in token order)
// however the tokens are chunked. Per data file and MoE layer, per expert:
//   count          routed tokens (any of the k slots)
//   top1_count     tokens whose highest-weighted expert it is
//   gate_sum       Σ gate weight the forward pass used (after renormalisation if the family does it)
//   prob_sum       Σ softmax probability over all tokens (soft usage)
//   reap_sum       Σ gate × ‖expert output‖₂ over routed tokens; REAP = reap_sum / count
//   ean_sum        Σ ‖expert output‖₂ over routed tokens; EAN mean = ean_sum / count
//   max_act        max over routed tokens of max |expert output element|
//   easy_ep_sum    Σ gate × ‖expert output‖ × max(0, 1 − cos(h, h + r)), h = residual before the
//                  block, r = routed output (shared expert excluded)
//   output_sum     [E, H] Σ expert output over routed tokens (characteristic activation = / count)
//   logit_sum      Σ router logit over all tokens
//   logit_gram     [E, E] Σ logit_i × logit_j over all tokens (router-logit trace similarity)
//   coactivation   [E, E] tokens routed to both i and j (diagonal = count)
//   all_output_sum [E, H] and output_cos_sum [E, E]: every expert on every token (optional)
// and for every layer (dense too): router_input_sum [H] (post-attention-norm hidden state) and
// tokens. Means are sums / counts, so files merge exactly.
#pragma once
#include <Eigen/Core>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/matrix.hpp"
#include "engine/observer.hpp"
#include "text/token_data.hpp"

namespace moeforge {


struct ExpertLayerStats {
  VecD count, top1_count, gate_sum, prob_sum, reap_sum, ean_sum, max_act, easy_ep_sum, logit_sum;
  MatD output_sum, logit_gram, coactivation;
  MatD all_output_sum, output_cos_sum;  // empty unless every expert ran on every token
  double tokens = 0;

  void init(int experts, int64_t hidden, bool all_outputs);
  void merge(const ExpertLayerStats& other);
  VecD reap() const;      // reap_sum / count (0 where count is 0)
  VecD ean_mean() const;
  VecD frequency() const; // count / tokens
};

struct FileStats {
  std::string file;
  double tokens = 0;
  std::vector<VecD> router_input_sum;      // per layer [H]
  std::vector<ExpertLayerStats> experts;   // per layer; empty entries for dense layers
};

struct CalibrationStats {
  std::string model;          // path the statistics were computed on
  std::string model_type;
  int n_layers = 0, n_experts = 0, top_k = 0;
  int64_t hidden = 0;
  std::vector<bool> moe_layer;
  bool all_outputs = false;
  std::vector<FileStats> files;

  FileStats merged() const;  // every file together
};

// Adds one MoE chunk; mask (may be null) marks the tokens that count.
void accumulate(ExpertLayerStats& s, const MoeChunk& chunk, const uint8_t* mask);

// Observer that fills the per-file statistics of `stats` during one pass over several files;
// file f owns the tokens [file_begin[f], file_begin[f+1]).
class StatsObserver : public Observer {
 public:
  StatsObserver(CalibrationStats& stats, std::vector<int64_t> file_begin);
  void activation(Site site, int layer, const Mat& rows) override;
  void moe(const MoeChunk& chunk) override;
  bool wants_all_expert_outputs() const override { return s_.all_outputs; }

 private:
  void for_each_file(int64_t begin, int64_t n, const std::function<void(FileStats&, int64_t, int64_t)>& fn);
  CalibrationStats& s_;
  std::vector<int64_t> file_begin_;
};

// One forward pass over every file of `data`, statistics kept per file.
CalibrationStats observe(const Engine& engine, const DataSet& data, bool all_outputs);

}  // namespace moeforge
