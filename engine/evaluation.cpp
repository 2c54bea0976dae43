#include "engine/evaluation.hpp"

#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "engine/distributed.hpp"

namespace moeforge {
namespace {

class NllObserver : public Observer {
 public:
  NllObserver(const Batch& batch, int64_t first_scored) : batch_(batch), first_(first_scored), sums_(batch.windows.size(), 0.0) {}
  bool wants_logits() const override { return true; }
  void logits(size_t w, const float* l, int64_t length, int64_t vocab) override {
    const int32_t* ids = batch_.tokens.data() + batch_.windows[w].offset;
    double total = 0;
    for (int64_t t = first_ - 1; t + 1 < length; ++t) {
      const float* row = l + t * vocab;
      float m = row[0];
      for (int64_t v = 1; v < vocab; ++v) m = std::max(m, row[v]);
      double s = 0;
      for (int64_t v = 0; v < vocab; ++v) s += std::exp(static_cast<double>(row[v] - m));
      float log_sum = m + static_cast<float>(std::log(s));
      total += static_cast<double>(log_sum - row[ids[t + 1]]);
    }
    sums_[w] = total;
  }
  const std::vector<double>& sums() const { return sums_; }

 private:
  const Batch& batch_;
  int64_t first_;  // the first position whose token is scored (≥ 1)
  std::vector<double> sums_;
};

// Every window's NLL sum. Inside an MPI job each rank runs its part of the windows; a window's
// value comes from exactly one rank, so the rank-order sum is exact and every rank gets the same.
std::vector<double> window_nll_sums(const Engine& engine, const Batch& all, int64_t first_scored) {
  const ProcessGroup& group = processes();
  WindowRange mine = split_windows(all, {0, all.windows.size()}, group.rank + 1, group.size, engine.segment_tokens());
  Batch batch = group.size > 1 ? slice_windows(all, mine) : Batch{};
  const Batch& run = group.size > 1 ? batch : all;
  NllObserver obs(run, first_scored);
  if (!run.windows.empty()) engine.run(run, obs);
  std::vector<double> sums(all.windows.size(), 0.0);
  std::copy(obs.sums().begin(), obs.sums().end(), sums.begin() + static_cast<std::ptrdiff_t>(mine.first));
  reduce_in_rank_order(sums, [&](size_t offset, const double* v, size_t n) {
    for (size_t i = 0; i < n; ++i) sums[offset + i] += v[i];
  });
  return sums;
}

}  // namespace

double EvalResult::bits_per_token() const { return mean_nll() / std::log(2.0); }
double EvalResult::perplexity() const { return std::exp(mean_nll()); }
std::optional<double> EvalResult::bits_per_byte() const {
  if (!bytes_known || predicted_bytes == 0) return std::nullopt;
  return nll_sum / static_cast<double>(predicted_bytes) / std::log(2.0);  // = bits_per_token() when a token is a byte
}

std::vector<EvalResult> evaluate(const Engine& engine, const DataSet& data, int64_t context) {
  if (context < 0) throw UsageError("--context must be 0 or more (found " + std::to_string(context) + ")");
  const int64_t first = std::max<int64_t>(1, context);  // position 0 has nothing to be predicted from
  const std::vector<double> nll = window_nll_sums(engine, data.batch, first);
  std::vector<EvalResult> out(data.files.size() + 1);
  for (size_t f = 0; f < data.files.size(); ++f) out[f].file = data.files[f].path;
  out.back().file = "(all)";
  std::vector<size_t> next_window(data.files.size(), 0);  // the window's index within its file
  for (size_t w = 0; w < data.batch.windows.size(); ++w) {
    int64_t predictions = std::max<int64_t>(0, data.batch.windows[w].length - first);
    const DataFile& file = data.files[data.file_of_window[w]];
    const Window& local = file.batch.windows[next_window[data.file_of_window[w]]++];
    int64_t bytes = 0;
    for (int64_t t = first; t < local.length && !file.token_bytes.empty(); ++t) bytes += file.token_bytes[static_cast<size_t>(local.offset + t)];
    for (EvalResult* r : {&out[data.file_of_window[w]], &out.back()}) {
      r->windows += 1;
      r->predictions += predictions;
      r->predicted_bytes += bytes;
      r->bytes_known = r->bytes_known && !file.token_bytes.empty();
      r->nll_sum += nll[w];
      r->window_nll.push_back(predictions ? nll[w] / static_cast<double>(predictions) : 0.0);
    }
  }
  for (const auto& r : out)
    if (r.predictions == 0)
      throw UsageError(r.file + ": no token is predicted (every window has fewer than " + std::to_string(first + 1) +
                       " tokens); nothing to evaluate. hint: a longer file, a larger --seq-len" + (context > 0 ? " or a smaller --context" : ""));
  return out;
}

nlohmann::ordered_json eval_report(const std::vector<EvalResult>& results) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& r : results) {
    nlohmann::ordered_json j = {{"file", r.file}, {"windows", r.windows}, {"predictions", r.predictions},
                                {"mean_nll", r.mean_nll()}, {"perplexity", r.perplexity()}, {"bits_per_token", r.bits_per_token()}};
    auto bpb = r.bits_per_byte();
    j["bits_per_byte"] = bpb ? nlohmann::ordered_json(*bpb) : nlohmann::ordered_json(nullptr);
    files.push_back(std::move(j));
  }
  return {{"files", files}};
}

}  // namespace moeforge
