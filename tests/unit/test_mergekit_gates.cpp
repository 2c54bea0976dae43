// mergekit-moe gate modes: hidden (last-token layer inputs of the base model) and cheap_embed,
// each against a computation that runs every prompt on its own.
#include <doctest/doctest.h>

#include <cmath>

#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/router_init.hpp"
#include "engine/engine.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

DataFile prompts(const std::vector<std::string>& texts) {
  DataFile f;
  for (const auto& t : texts) {
    std::vector<int32_t> ids(t.begin(), t.end());
    f.batch.add_window(ids.data(), static_cast<int64_t>(ids.size()));
  }
  return f;
}

struct LayerInputs : Observer {
  std::vector<std::vector<float>> last;  // per layer: the last token's layer input
  void activation(Site s, int layer, const Mat& rows) override {
    if (s != Site::kLayerInput) return;
    if (last.size() <= static_cast<size_t>(layer)) last.resize(layer + 1);
    last[layer].assign(rows.row(rows.rows() - 1).data(), rows.row(rows.rows() - 1).data() + rows.cols());
  }
};

}  // namespace

TEST_CASE("mergekit hidden gates: mean last-token layer input over prompts, negatives subtracted, normalised") {
  Checkpoint base(test::fixture("models/btx-bytes/base"));
  std::vector<std::string> pos = {"def main():", "import numpy as np", "class Foo(object):"}, neg = {"Once upon a time"};
  RouterInit init;
  init.method = RouterMethod::kMergekitHidden;
  init.positive = {prompts(pos)};
  init.negative = {prompts(neg)};
  RouterModels models{{&base}, &base, &base};
  std::vector<std::string> warnings;
  auto rows = init_routers(init, models, 1, 2, 64, {true, true}, &warnings);
  for (int l = 0; l < 2; ++l) {
    std::vector<double> want(64, 0.0);
    for (const auto& group : {std::pair{pos, 1.0}, std::pair{neg, -1.0}})
      for (const auto& p : group.first) {
        Batch b;
        std::vector<int32_t> ids(p.begin(), p.end());
        b.add_window(ids.data(), static_cast<int64_t>(ids.size()));
        LayerInputs obs;
        Engine(base).run(b, obs);
        for (int d = 0; d < 64; ++d) want[d] += group.second * obs.last[l][d] / static_cast<double>(group.first.size());
      }
    double n = 0;
    for (double v : want) n += v * v;
    for (int d = 0; d < 64; ++d) CHECK(rows[l][d] == doctest::Approx(want[d] / std::sqrt(n)).epsilon(1e-6));
  }
}

TEST_CASE("mergekit cheap_embed gates: normalised summed embeddings, negatives normalised then subtracted") {
  Checkpoint base(test::fixture("models/btx-bytes/base"));
  RouterInit init;
  init.method = RouterMethod::kCheapEmbed;
  init.positive = {prompts({"ab", "b"})};
  init.negative = {prompts({"z"})};
  RouterModels models{{&base}, &base, &base};
  std::vector<std::string> warnings;
  auto rows = init_routers(init, models, 1, 2, 64, {true, true}, &warnings);
  auto emb = read_f64(base.require_tensor("model.embed_tokens.weight"));
  std::vector<double> p(64), q(64), w(64);
  double np = 0, nq = 0, nw = 0;
  for (int d = 0; d < 64; ++d) {
    p[d] = emb['a' * 64 + d] + 2 * emb['b' * 64 + d];
    q[d] = emb['z' * 64 + d];
    np += p[d] * p[d];
    nq += q[d] * q[d];
  }
  for (int d = 0; d < 64; ++d) {
    w[d] = p[d] / std::sqrt(np) - q[d] / std::sqrt(nq);
    nw += w[d] * w[d];
  }
  for (int d = 0; d < 64; ++d) {
    CHECK(rows[0][d] == doctest::Approx(w[d] / std::sqrt(nw)).epsilon(1e-9));
    CHECK(rows[1][d] == rows[0][d]);
  }
}
