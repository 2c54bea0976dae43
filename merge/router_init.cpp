#include "merge/router_init.hpp"

#include <Eigen/SVD>
#include <cmath>
#include <map>

#include "core/error.hpp"
#include "core/random.hpp"
#include "formats/tensor_reader.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/engine.hpp"

namespace moeforge {
namespace {

constexpr double kIllConditioned = 100.0;

// Mean over every token of the data of a per-layer vector (router inputs) or the embedding.
struct LayerMeans {
  std::vector<VecD> mean;  // per layer, [H]
};

LayerMeans hidden_means(const Checkpoint& model, const DataFile& data, int threads) {
  Engine engine(model, {.threads = threads});
  CalibrationStats s = observe(engine, combine({data}), false);
  LayerMeans m;
  for (const auto& sum : s.files[0].router_input_sum) m.mean.push_back(sum / s.files[0].tokens);
  return m;
}

// mergekit's "hidden": the residual stream entering each layer at the last token of every window.
class LastTokenInputs : public Observer {
 public:
  LastTokenInputs(const Batch& b, int layers, int64_t hidden) : batch_(b), sum_(static_cast<size_t>(layers), VecD::Zero(hidden)) {}
  void activation(Site site, int layer, const Mat& rows) override {
    if (site != Site::kLayerInput) return;
    for (const auto& w : batch_.windows) sum_[static_cast<size_t>(layer)] += rows.row(w.offset + w.length - 1).transpose().cast<double>();
  }
  LayerMeans means() const {
    LayerMeans m;
    for (const auto& s : sum_) m.mean.push_back(s / static_cast<double>(batch_.windows.size()));
    return m;
  }

 private:
  const Batch& batch_;
  std::vector<VecD> sum_;
};

LayerMeans last_token_means(const Checkpoint& model, const DataFile& prompts, int threads) {
  Engine engine(model, {.threads = threads});
  LastTokenInputs obs(prompts.batch, engine.config().n_layers, engine.config().hidden);
  engine.run(prompts.batch, obs);
  return obs.means();
}

VecD embedding_mean(const Checkpoint& model, const DataFile& data) {
  const TensorInfo& e = model.require_tensor("model.embed_tokens.weight");
  std::map<int32_t, int64_t> counts;
  for (int32_t id : data.batch.tokens) {
    if (id < 0 || id >= e.rows())
      throw FormatError(data.path + ": token id " + std::to_string(id) + " is outside the embedding's " + std::to_string(e.rows()) + " rows");
    ++counts[id];
  }
  VecD sum = VecD::Zero(e.cols());
  std::vector<float> row(static_cast<size_t>(e.cols()));
  for (const auto& [id, n] : counts) {
    read_rows_f32(e, id, id + 1, row.data());
    for (int64_t d = 0; d < e.cols(); ++d) sum[d] += static_cast<double>(n) * row[d];
  }
  return sum / static_cast<double>(data.batch.tokens.size());
}

void normalise_into(const VecD& v, double* out, const std::string& what, std::vector<std::string>* warnings) {
  double n = v.norm();
  if (n == 0) {
    warnings->push_back(what + ": the mean is zero; its router row is left at zero");
    for (Eigen::Index d = 0; d < v.size(); ++d) out[d] = 0;
    return;
  }
  for (Eigen::Index d = 0; d < v.size(); ++d) out[d] = v[d] / n;
}

const DataFile* negative_for(const RouterInit& init, int row) {
  if (init.negative.empty()) return nullptr;
  const DataFile* f = &init.negative[init.negative.size() == 1 ? 0 : static_cast<size_t>(row)];
  return f->batch.windows.empty() ? nullptr : f;  // an empty file: nothing to subtract
}

}  // namespace

constexpr const char* kMethodNames[] = {"random",      "zero",           "embed", "hidden",  "centroid", "mergekit-hidden",
                                        "cheap-embed", "uniform-random", "ridge", "logistic"};

RouterMethod parse_router_method(const std::string& name) {
  for (int i = 0; i < 10; ++i)
    if (name == kMethodNames[i]) return static_cast<RouterMethod>(i);
  throw UsageError("--router \"" + name + "\": expected random, zero, embed, hidden, centroid, ridge, logistic, mergekit-hidden, cheap-embed or uniform-random");
}

bool router_is_fitted(RouterMethod m) { return m == RouterMethod::kRidge || m == RouterMethod::kLogistic; }

const char* router_method_name(RouterMethod m) { return kMethodNames[static_cast<int>(m)]; }

bool router_needs_data(RouterMethod m) {
  return m != RouterMethod::kRandom && m != RouterMethod::kZero && m != RouterMethod::kUniformRandom;
}

double condition_number(const std::vector<double>& matrix, int rows, int64_t hidden) {
  Eigen::Map<const MatD> m(matrix.data(), rows, hidden);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(m);
  const auto& s = svd.singularValues();
  if (s.size() == 0 || s[s.size() - 1] == 0) return INFINITY;
  return s[0] / s[s.size() - 1];
}

std::vector<std::vector<double>> init_routers(const RouterInit& init, const RouterModels& models, int rows, int n_layers,
                                              int64_t H, const std::vector<bool>& moe_layer, std::vector<std::string>* warnings) {
  if (router_needs_data(init.method) && static_cast<int>(init.positive.size()) != rows)
    throw UsageError(std::string("--router ") + router_method_name(init.method) + " needs one data file per expert (" +
                     std::to_string(rows) + "), found " + std::to_string(init.positive.size()));
  if (!init.negative.empty() && init.negative.size() != 1 && static_cast<int>(init.negative.size()) != rows)
    throw UsageError("negative data: give one file for all experts or one per expert (" + std::to_string(rows) + "), found " +
                     std::to_string(init.negative.size()));
  std::vector<std::vector<double>> out(static_cast<size_t>(n_layers));
  for (int l = 0; l < n_layers; ++l)
    if (moe_layer[static_cast<size_t>(l)]) out[static_cast<size_t>(l)].assign(static_cast<size_t>(rows * H), 0.0);

  // Row r of every MoE layer's router from per-layer means: positive minus negative, normalised.
  auto write_layer_rows = [&](int r, const LayerMeans& pos, const std::optional<LayerMeans>& neg) {
    for (int l = 0; l < n_layers; ++l) {
      if (!moe_layer[static_cast<size_t>(l)]) continue;
      VecD m = pos.mean[static_cast<size_t>(l)];
      if (neg) m -= neg->mean[static_cast<size_t>(l)];
      normalise_into(m, out[static_cast<size_t>(l)].data() + r * H, "layer " + std::to_string(l) + " expert " + std::to_string(r), warnings);
    }
  };

  switch (init.method) {
    case RouterMethod::kZero:
    case RouterMethod::kRidge:  // filled by fit_routers, which runs the MoE being built
    case RouterMethod::kLogistic: return out;
    case RouterMethod::kRandom:
      for (int l = 0; l < n_layers; ++l) {
        SeededStream stream(init.seed, fnv1a("router." + std::to_string(l)));
        auto& m = out[static_cast<size_t>(l)];
        for (size_t i = 0; i < m.size(); ++i) m[i] = init.std * stream.normal(i);
      }
      return out;
    case RouterMethod::kEmbed:
      for (int r = 0; r < rows; ++r) {
        VecD mean = embedding_mean(*models.embedding, init.positive[static_cast<size_t>(r)]);
        if (const DataFile* neg = negative_for(init, r)) mean -= embedding_mean(*models.embedding, *neg);
        for (int l = 0; l < n_layers; ++l)
          if (moe_layer[static_cast<size_t>(l)])
            normalise_into(mean, out[static_cast<size_t>(l)].data() + r * H, "expert " + std::to_string(r), warnings);
      }
      break;
    case RouterMethod::kUniformRandom:
      for (int l = 0; l < n_layers; ++l) {
        SeededStream stream(init.seed, fnv1a("router." + std::to_string(l)));
        auto& m = out[static_cast<size_t>(l)];
        double bound = 1.0 / std::sqrt(static_cast<double>(H));
        for (size_t i = 0; i < m.size(); ++i) m[i] = bound * (2 * stream.uniform(i) - 1);
      }
      return out;
    case RouterMethod::kCheapEmbed:
      for (int r = 0; r < rows; ++r) {
        VecD e = embedding_mean(*models.embedding, init.positive[static_cast<size_t>(r)]);
        if (e.norm() > 0) e.normalize();
        if (const DataFile* neg = negative_for(init, r)) {
          VecD n = embedding_mean(*models.embedding, *neg);
          if (n.norm() > 0) n.normalize();
          e -= n;
        }
        for (int l = 0; l < n_layers; ++l)
          if (moe_layer[static_cast<size_t>(l)]) normalise_into(e, out[static_cast<size_t>(l)].data() + r * H, "expert " + std::to_string(r), warnings);
      }
      break;
    case RouterMethod::kMergekitHidden:
      for (int r = 0; r < rows; ++r) {
        LayerMeans pos = last_token_means(*models.base, init.positive[static_cast<size_t>(r)], init.threads);
        std::optional<LayerMeans> neg;
        if (const DataFile* n = negative_for(init, r)) neg = last_token_means(*models.base, *n, init.threads);
        write_layer_rows(r, pos, neg);
      }
      break;
    case RouterMethod::kHidden:
    case RouterMethod::kCentroid: {
      std::optional<LayerMeans> shared_negative;
      if (init.method == RouterMethod::kHidden && init.negative.size() == 1 && negative_for(init, 0) != nullptr)
        shared_negative = hidden_means(*models.base, init.negative[0], init.threads);
      for (int r = 0; r < rows; ++r) {
        const Checkpoint& model = init.method == RouterMethod::kHidden ? *models.base : *models.per_row[static_cast<size_t>(r)];
        LayerMeans pos = hidden_means(model, init.positive[static_cast<size_t>(r)], init.threads);
        std::optional<LayerMeans> neg = shared_negative;
        if (!neg && negative_for(init, r)) neg = hidden_means(model, *negative_for(init, r), init.threads);
        write_layer_rows(r, pos, neg);
      }
      break;
    }
  }
  for (int l = 0; l < n_layers; ++l) {
    if (out[static_cast<size_t>(l)].empty() || rows < 2) continue;
    double cond = condition_number(out[static_cast<size_t>(l)], rows, H);
    if (cond > kIllConditioned)
      warnings->push_back("layer " + std::to_string(l) + ": router rows are nearly linearly dependent (condition number " +
                          std::to_string(cond) + "); the experts' data may be too alike to route apart");
  }
  return out;
}

}  // namespace moeforge
