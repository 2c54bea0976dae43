#include "engine/calibration_stats.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/distributed.hpp"
#include "engine/stats_file.hpp"

namespace moeforge {
namespace {

double norm_of(const float* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

double max_abs(const float* v, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(v[i])));
  return m;
}

// max(0, 1 − cos(h, h + r)): how much the routed output turns the residual stream.
double easy_ep_weight(const float* h, const float* r, int64_t n) {
  double hh = 0, hr = 0, rr = 0;
  for (int64_t i = 0; i < n; ++i) {
    double a = h[i], b = static_cast<double>(h[i]) + r[i];
    hh += a * a;
    hr += a * b;
    rr += b * b;
  }
  if (hh == 0 || rr == 0) return 0;
  return std::max(0.0, 1.0 - hr / std::sqrt(hh * rr));
}

VecD safe_divide(const VecD& a, const VecD& b) {
  VecD out = VecD::Zero(a.size());
  for (Eigen::Index i = 0; i < a.size(); ++i) out[i] = b[i] > 0 ? a[i] / b[i] : 0.0;
  return out;
}

constexpr int64_t kGramRows = 1024;  // rows per Gram block
constexpr int64_t kGramTile = 128;   // Gram columns per task

}  // namespace

void accumulate_gram(MatD& gram, const float* X, int64_t n) {
  const int64_t H = gram.cols();
  Eigen::setNbThreads(1);  // parallelism comes from the fixed column tiles below
  Eigen::MatrixXd block(std::min(n, kGramRows), H);
  for (int64_t r0 = 0; r0 < n; r0 += kGramRows) {
    const int64_t m = std::min(kGramRows, n - r0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t d = 0; d < H; ++d) block(i, d) = X[(r0 + i) * H + d];
    auto rows = block.topRows(m);
    const int64_t tiles = (H + kGramTile - 1) / kGramTile;
#pragma omp parallel for schedule(static)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t c0 = tile * kGramTile, w = std::min(kGramTile, H - c0);
      gram.middleCols(c0, w).noalias() += rows.transpose() * rows.middleCols(c0, w);
    }
  }
}

void ExpertLayerStats::init(int E, int64_t H, bool all_outputs) {
  for (VecD* v : {&count, &top1_count, &gate_sum, &prob_sum, &reap_sum, &ean_sum, &max_act, &easy_ep_sum, &logit_sum}) *v = VecD::Zero(E);
  output_sum = MatD::Zero(E, H);
  logit_gram = MatD::Zero(E, E);
  coactivation = MatD::Zero(E, E);
  if (all_outputs) {
    all_output_sum = MatD::Zero(E, H);
    output_cos_sum = MatD::Zero(E, E);
  }
  tokens = 0;
}

void ExpertLayerStats::merge(const ExpertLayerStats& o) {
  if (count.size() == 0) {
    *this = o;
    return;
  }
  count += o.count;
  top1_count += o.top1_count;
  gate_sum += o.gate_sum;
  prob_sum += o.prob_sum;
  reap_sum += o.reap_sum;
  ean_sum += o.ean_sum;
  max_act = max_act.cwiseMax(o.max_act);
  easy_ep_sum += o.easy_ep_sum;
  logit_sum += o.logit_sum;
  output_sum += o.output_sum;
  logit_gram += o.logit_gram;
  coactivation += o.coactivation;
  if (all_output_sum.size() && o.all_output_sum.size()) {
    all_output_sum += o.all_output_sum;
    output_cos_sum += o.output_cos_sum;
  } else {
    all_output_sum.resize(0, 0);
    output_cos_sum.resize(0, 0);
  }
  tokens += o.tokens;
}

VecD ExpertLayerStats::reap() const { return safe_divide(reap_sum, count); }
VecD ExpertLayerStats::ean_mean() const { return safe_divide(ean_sum, count); }
VecD ExpertLayerStats::frequency() const { return tokens > 0 ? VecD(count / tokens) : VecD(VecD::Zero(count.size())); }

void accumulate(ExpertLayerStats& s, const MoeChunk& c, const uint8_t* mask) {
  const int E = c.n_experts, k = c.k;
  const int64_t H = c.hidden;
  for (int64_t t = 0; t < c.n; ++t) {
    if (mask != nullptr && !mask[t]) continue;
    s.tokens += 1;
    const float* logits = c.router_logits + t * E;
    for (int i = 0; i < E; ++i) {
      s.prob_sum[i] += c.probs[t * E + i];
      s.logit_sum[i] += logits[i];
      for (int j = 0; j < E; ++j) s.logit_gram(i, j) += static_cast<double>(logits[i]) * logits[j];
    }
    double token_weight = c.residual ? easy_ep_weight(c.residual + t * H, c.routed_out + t * H, H) : 0.0;
    for (int a = 0; a < k; ++a) {
      int e = c.topk_idx[t * k + a];
      const float* y = c.expert_out + (t * k + a) * H;
      double gate = c.topk_weight[t * k + a], norm = norm_of(y, H);
      s.count[e] += 1;
      if (a == 0) s.top1_count[e] += 1;
      s.gate_sum[e] += gate;
      s.reap_sum[e] += gate * norm;
      s.ean_sum[e] += norm;
      s.max_act[e] = std::max(s.max_act[e], max_abs(y, H));
      s.easy_ep_sum[e] += gate * norm * token_weight;
      for (int64_t d = 0; d < H; ++d) s.output_sum(e, d) += y[d];
      for (int b = 0; b < k; ++b) s.coactivation(e, c.topk_idx[t * k + b]) += 1;
    }
    if (c.all_expert_out != nullptr) {
      std::vector<double> norms(static_cast<size_t>(E));
      for (int i = 0; i < E; ++i) {
        const float* y = c.all_expert_out + (i * c.all_stride + t) * H;
        norms[i] = norm_of(y, H);
        for (int64_t d = 0; d < H; ++d) s.all_output_sum(i, d) += y[d];
      }
      for (int i = 0; i < E; ++i)
        for (int j = 0; j < E; ++j) {
          const float* yi = c.all_expert_out + (i * c.all_stride + t) * H;
          const float* yj = c.all_expert_out + (j * c.all_stride + t) * H;
          double dot = 0;
          for (int64_t d = 0; d < H; ++d) dot += static_cast<double>(yi[d]) * yj[d];
          s.output_cos_sum(i, j) += norms[i] > 0 && norms[j] > 0 ? dot / (norms[i] * norms[j]) : 0.0;
        }
    }
  }
}

FileStats CalibrationStats::merged() const {
  FileStats m;
  m.file = "(all)";
  for (const auto& f : files) {
    m.tokens += f.tokens;
    if (m.router_input_sum.empty()) {
      m.router_input_sum = f.router_input_sum;
      m.experts = f.experts;
      continue;
    }
    for (size_t l = 0; l < f.router_input_sum.size(); ++l) m.router_input_sum[l] += f.router_input_sum[l];
    for (size_t l = 0; l < f.router_input_gram.size() && l < m.router_input_gram.size(); ++l)
      if (m.router_input_gram[l].size() > 0) m.router_input_gram[l] += f.router_input_gram[l];
    for (size_t l = 0; l < f.experts.size(); ++l) m.experts[l].merge(f.experts[l]);
  }
  return m;
}

StatsObserver::StatsObserver(CalibrationStats& stats, std::vector<int64_t> file_begin)
    : s_(stats), file_begin_(std::move(file_begin)) {
  for (auto& f : s_.files) {
    f.router_input_sum.assign(static_cast<size_t>(s_.n_layers), VecD::Zero(s_.hidden));
    f.experts.resize(static_cast<size_t>(s_.n_layers));
    if (s_.router_gram) f.router_input_gram.resize(static_cast<size_t>(s_.n_layers));
    for (int l = 0; l < s_.n_layers; ++l) {
      if (!s_.moe_layer[static_cast<size_t>(l)]) continue;
      f.experts[static_cast<size_t>(l)].init(s_.n_experts, s_.hidden, s_.all_outputs);
      if (s_.router_gram) f.router_input_gram[static_cast<size_t>(l)] = MatD::Zero(s_.hidden, s_.hidden);
    }
  }
}

void StatsObserver::for_each_file(int64_t begin, int64_t n, const std::function<void(FileStats&, int64_t, int64_t)>& fn) {
  for (size_t f = 0; f < s_.files.size(); ++f) {
    int64_t lo = std::max(begin, file_begin_[f]), hi = std::min(begin + n, file_begin_[f + 1]);
    if (lo < hi) fn(s_.files[f], lo - begin, hi - begin);
  }
}

void StatsObserver::activation(Site site, int layer, const Mat& rows) {
  if (site == Site::kEmbed)
    for_each_file(0, rows.rows(), [](FileStats& f, int64_t a, int64_t b) { f.tokens += static_cast<double>(b - a); });
  if (site != Site::kRouterInput) return;
  for_each_file(0, rows.rows(), [&](FileStats& f, int64_t a, int64_t b) {
    VecD& sum = f.router_input_sum[static_cast<size_t>(layer)];
    for (int64_t t = a; t < b; ++t) sum += rows.row(t).transpose().cast<double>();
    if (s_.router_gram && s_.moe_layer[static_cast<size_t>(layer)])
      accumulate_gram(f.router_input_gram[static_cast<size_t>(layer)], rows.data() + a * rows.cols(), b - a);
  });
}

void StatsObserver::moe(const MoeChunk& chunk) {
  for_each_file(chunk.token_begin, chunk.n, [&](FileStats& f, int64_t a, int64_t b) {
    accumulate(f.experts[static_cast<size_t>(chunk.layer)], chunk.slice(a, b), nullptr);
  });
}

namespace {

CalibrationStats empty_stats(const ModelConfig& c, const std::string& label, const DataSet& data, const ObserveOptions& o) {
  CalibrationStats s;
  s.model = label;
  s.model_type = std::string(c.family->model_type);
  s.n_layers = c.n_layers;
  s.n_experts = c.n_experts;
  s.top_k = c.top_k;
  s.hidden = c.hidden;
  s.moe_layer = c.moe_layer;
  s.all_outputs = o.all_outputs && c.is_moe();
  s.router_gram = o.router_gram && c.is_moe();
  for (const auto& f : data.files) s.files.push_back(FileStats{f.path});
  return s;
}

// Statistics of the windows in `range` only (every file listed; files outside it stay zero).
CalibrationStats observe_range(const Engine& engine, const DataSet& data, const ObserveOptions& o, WindowRange range) {
  CalibrationStats s = empty_stats(engine.config(), engine.label(), data, o);
  Batch batch = slice_windows(data.batch, range);
  // File f owns the sub-batch tokens [begin[f], begin[f+1]): windows are in file order.
  std::vector<int64_t> begin(data.files.size() + 1, 0);
  for (size_t w = range.first; w < range.last; ++w) begin[data.file_of_window[w] + 1] += data.batch.windows[w].length;
  for (size_t f = 0; f < data.files.size(); ++f) begin[f + 1] += begin[f];
  StatsObserver obs(s, begin);
  if (!range.size()) return s;
  engine.run(batch, obs);
  return s;
}

}  // namespace

CalibrationStats observe(const Engine& engine, const DataSet& data, const ObserveOptions& o) {
  const WindowRange all{0, data.batch.windows.size()};
  const int64_t segment = engine.segment_tokens();
  const WindowRange range = split_windows(data.batch, all, o.shard.index, o.shard.count, segment);
  // Under MPI each rank observes its part of the range; parts are combined in rank order.
  const ProcessGroup& group = processes();
  CalibrationStats s = observe_range(engine, data, o, split_windows(data.batch, range, group.rank + 1, group.size, segment));
  if (group.size > 1) {
    StatsTensors t = to_tensors(s);
    reduce_across_processes(t);
    s = from_tensors(t, "(MPI reduction)");
  }
  // A plan being built (fitted routers) has no file to fingerprint; its statistics are not written.
  if (engine.checkpoint()) s.run = describe_run(*engine.checkpoint(), data, o.shard, range, segment, o.data_options);
  return s;
}

CalibrationStats observe(const Engine& engine, const DataSet& data, bool all_outputs, bool router_gram) {
  return observe(engine, data, ObserveOptions{.all_outputs = all_outputs, .router_gram = router_gram});
}

}  // namespace moeforge
