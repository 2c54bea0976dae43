#include "merge/router_fit_pass.hpp"

#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/log.hpp"
#include "engine/plan_weights.hpp"

namespace moeforge {
namespace {

// The class of every token of the data: data file c is class c.
std::vector<int32_t> token_labels(const DataSet& data) {
  std::vector<int32_t> labels;
  labels.reserve(static_cast<size_t>(data.batch.n_tokens()));
  for (size_t c = 0; c < data.files.size(); ++c) labels.insert(labels.end(), static_cast<size_t>(data.files[c].batch.n_tokens()), static_cast<int32_t>(c));
  if (static_cast<int64_t>(labels.size()) != data.batch.n_tokens())
    throw Error(ExitCode::kInternal, "router fit: the data's files do not add up to its batch");
  return labels;
}

// The position of every token in its window, as a bucket: 0, 1, 2–3, 4–7, ...
std::vector<uint8_t> position_buckets(const Batch& batch) {
  std::vector<uint8_t> out(static_cast<size_t>(batch.n_tokens()), 0);
  for (const Window& w : batch.windows)
    for (int64_t p = 1; p < w.length; ++p) out[static_cast<size_t>(w.offset + p)] = static_cast<uint8_t>(1 + std::ilogb(static_cast<double>(p)));
  return out;
}

// Fits the router of each slot's layer when the layer's router input goes by, and counts
// top-1 agreement with the labels in every MoE chunk.
class RouterFitObserver : public Observer {
 public:
  RouterFitObserver(const DataSet& data, const std::vector<int>& class_of_expert, int n_layers, const std::vector<RouterSlot>* slots,
                    const RouterFitRequest* request, std::vector<std::string>* warnings)
      : labels_(token_labels(data)), buckets_(position_buckets(data.batch)), class_of_expert_(class_of_expert), classes_(static_cast<int>(data.files.size())), slots_(slots),
        request_(request), warnings_(warnings), accuracy_(static_cast<size_t>(n_layers)) {}

  void activation(Site site, int layer, const Mat& X) override {
    if (site != Site::kRouterInput || slots_ == nullptr) return;
    for (const auto& slot : *slots_)
      if (slot.layer == layer) fit(slot, X);
  }

  void moe(const MoeChunk& c) override {
    LayerAccuracy& a = accuracy_[static_cast<size_t>(c.layer)];
    if (a.tokens.empty()) {
      a.layer = c.layer;
      a.correct.assign(static_cast<size_t>(classes_), 0.0);
      a.tokens.assign(static_cast<size_t>(classes_), 0.0);
    }
    for (int64_t t = 0; t < c.n; ++t) {
      const int32_t label = labels_[static_cast<size_t>(c.token_begin + t)];
      const int top = c.topk_idx[t * c.k];
      const size_t bucket = buckets_[static_cast<size_t>(c.token_begin + t)];
      if (a.tokens_by_position.size() <= bucket) {
        a.tokens_by_position.resize(bucket + 1, 0.0);
        a.correct_by_position.resize(bucket + 1, 0.0);
      }
      const bool right = class_of_expert_[static_cast<size_t>(top)] == label;
      a.tokens[static_cast<size_t>(label)] += 1;
      a.tokens_by_position[bucket] += 1;
      if (right) {
        a.correct[static_cast<size_t>(label)] += 1;
        a.correct_by_position[bucket] += 1;
      }
    }
  }

  std::vector<LayerAccuracy> accuracy() const {
    std::vector<LayerAccuracy> out;
    for (const auto& a : accuracy_)
      if (!a.tokens.empty()) out.push_back(a);
    return out;
  }

 private:
  void fit(const RouterSlot& slot, const Mat& X) {
    const int64_t H = X.cols();
    const std::string what = "layer " + std::to_string(slot.layer) + " router";
    MatD rows;
    if (request_->method == RouterMethod::kRidge) {
      RidgeStats s;
      s.init(classes_, H);
      s.add(X.data(), X.rows(), labels_.data());
      rows = ridge_router(s, request_->options, what, warnings_);
    } else if (request_->method == RouterMethod::kLogistic) {
      rows = logistic_router(X.data(), X.rows(), H, labels_.data(), classes_, request_->options, what, warnings_);
    } else {
      throw Error(ExitCode::kInternal, std::string("router fit: ") + router_method_name(request_->method) + " is not a fitted router");
    }
    std::vector<double>& out = *slot.rows;
    const size_t experts = class_of_expert_.size();
    if (out.size() != experts * static_cast<size_t>(H)) throw Error(ExitCode::kInternal, what + ": slot has the wrong size");
    for (size_t x = 0; x < experts; ++x)
      for (int64_t d = 0; d < H; ++d) out[x * static_cast<size_t>(H) + static_cast<size_t>(d)] = rows(class_of_expert_[x], d);
    note(what + ": fitted (" + router_method_name(request_->method) + ")");
  }

  std::vector<int32_t> labels_;
  std::vector<uint8_t> buckets_;
  const std::vector<int>& class_of_expert_;
  int classes_;
  const std::vector<RouterSlot>* slots_;
  const RouterFitRequest* request_;
  std::vector<std::string>* warnings_;
  std::vector<LayerAccuracy> accuracy_;
};

void check_classes(const DataSet& data, const std::vector<int>& class_of_expert, int n_experts) {
  if (static_cast<int>(class_of_expert.size()) != n_experts)
    throw Error(ExitCode::kInternal, "router fit: " + std::to_string(class_of_expert.size()) + " classes for " + std::to_string(n_experts) + " experts");
  for (size_t c = 0; c < data.files.size(); ++c)
    if (data.files[c].batch.n_tokens() == 0)
      throw UsageError(data.files[c].path + ": no tokens; every expert needs data to fit or measure its router");
}

}  // namespace

double LayerAccuracy::accuracy() const {
  double t = std::accumulate(tokens.begin(), tokens.end(), 0.0);
  return t > 0 ? std::accumulate(correct.begin(), correct.end(), 0.0) / t : 0.0;
}

std::vector<std::string> data_paths(const std::vector<DataFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  return out;
}

std::vector<int> one_class_per_expert(int experts) {
  std::vector<int> c(static_cast<size_t>(experts));
  std::iota(c.begin(), c.end(), 0);
  return c;
}

std::vector<LayerAccuracy> fit_routers(const Plan& plan, const std::string& label, const std::vector<RouterSlot>& slots,
                                       const DataSet& data, const RouterFitRequest& request, std::vector<std::string>* warnings) {
  if (!(request.options.lambda > 0)) throw UsageError("--router-lambda must be > 0");
  PlanWeights weights(plan, label);
  Engine engine(weights, {.threads = request.threads});
  check_classes(data, request.class_of_expert, engine.config().n_experts);
  RouterFitObserver obs(data, request.class_of_expert, engine.config().n_layers, &slots, &request, warnings);
  engine.run(data.batch, obs);
  return obs.accuracy();
}

std::vector<LayerAccuracy> routing_accuracy(const Engine& engine, const DataSet& data, const std::vector<int>& class_of_expert) {
  check_classes(data, class_of_expert, engine.config().n_experts);
  RouterFitObserver obs(data, class_of_expert, engine.config().n_layers, nullptr, nullptr, nullptr);
  engine.run(data.batch, obs);
  return obs.accuracy();
}

RidgeStats ridge_stats_from(const std::vector<CalibrationStats>& stats, const std::vector<int>& class_of_stats, int classes, int layer) {
  RidgeStats r;
  r.init(classes, stats.at(0).hidden);
  for (size_t i = 0; i < stats.size(); ++i) {
    const int c = class_of_stats[i];
    for (const FileStats& f : stats[i].files) {
      const auto l = static_cast<size_t>(layer);
      if (l >= f.router_input_gram.size() || f.router_input_gram[l].size() == 0)
        throw UsageError(stats[i].model + " statistics: layer " + std::to_string(layer) +
                         " has no router-input Gram matrix; hint: run `moeforge observe --router-gram`");
      r.gram += f.router_input_gram[l];
      r.class_sum.row(c) += f.router_input_sum[l].transpose();
      r.count[c] += f.tokens;
    }
  }
  return r;
}

namespace {

nlohmann::ordered_json accuracy_json(const LayerAccuracy& a) {
  std::vector<double> per_class;
  for (size_t c = 0; c < a.tokens.size(); ++c) per_class.push_back(a.tokens[c] > 0 ? a.correct[c] / a.tokens[c] : 0.0);
  nlohmann::ordered_json positions = nlohmann::ordered_json::array();
  for (size_t b = 0; b < a.tokens_by_position.size(); ++b) {
    if (a.tokens_by_position[b] == 0) continue;
    int64_t from = b == 0 ? 0 : int64_t{1} << (b - 1), to = b == 0 ? 0 : (int64_t{1} << b) - 1;
    positions.push_back({{"positions", std::to_string(from) + "-" + std::to_string(to)}, {"accuracy", a.correct_by_position[b] / a.tokens_by_position[b]}});
  }
  return {{"accuracy", a.accuracy()}, {"per_data_file", per_class}, {"by_position", positions}};
}

}  // namespace

nlohmann::ordered_json router_report_json(const std::string& verb, RouterMethod method, const FitOptions& o,
                                          const std::vector<std::string>& data_files, const std::vector<LayerAccuracy>& after,
                                          const std::vector<LayerAccuracy>& before) {
  nlohmann::ordered_json r;
  r["verb"] = verb;
  r["router"] = router_method_name(method);
  if (router_is_fitted(method)) {
    r["router_lambda"] = o.lambda;
    r["router_scale"] = o.scale;
  }
  r["data"] = data_files;
  r["accuracy"] = "fraction of the tokens of data file e whose top-1 expert is expert e (per layer, on the data)";
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t i = 0; i < after.size(); ++i) {
    nlohmann::ordered_json l;
    l["layer"] = after[i].layer;
    l["tokens"] = after[i].tokens;
    l["after"] = accuracy_json(after[i]);
    for (const auto& b : before)
      if (b.layer == after[i].layer) l["before"] = accuracy_json(b);
    layers.push_back(l);
  }
  r["layers"] = layers;
  return r;
}

}  // namespace moeforge
