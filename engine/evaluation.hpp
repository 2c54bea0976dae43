// `eval`: next-token negative log-likelihood per file and overall. Windows are independent
// sequences; a window of T tokens predicts positions 1..T−1 from float32 logits (log-softmax
// with float64 sums). Aggregates are token-weighted: total NLL / total predictions, which equals
// the mean of per-window means when windows are equally long (the fixtures' definition). Bits per
// byte divide by the bytes of text behind the predicted tokens (byte and text data only).
// `context` > 0 scores only the tokens at positions ≥ context of their window: each scored token
// then sees at least that many tokens before it (the earlier ones are read, not scored).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "engine/engine.hpp"
#include "text/token_data.hpp"

namespace moeforge {

struct EvalResult {
  std::string file;
  int64_t windows = 0, predictions = 0;
  double nll_sum = 0;               // nats
  std::vector<double> window_nll;   // mean NLL per window, nats
  int64_t predicted_bytes = 0;      // text bytes of the predicted tokens, when every file knows them
  bool bytes_known = true;
  double mean_nll() const { return predictions ? nll_sum / static_cast<double>(predictions) : 0; }
  double bits_per_token() const;
  std::optional<double> bits_per_byte() const;
  double perplexity() const;
};

// One forward pass over all files; the last entry is the total over every file.
std::vector<EvalResult> evaluate(const Engine& engine, const DataSet& data, int64_t context = 0);

nlohmann::ordered_json eval_report(const std::vector<EvalResult>& results);

}  // namespace moeforge
