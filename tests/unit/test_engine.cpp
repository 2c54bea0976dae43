// The forward engine against Hugging Face's golden activations for every tiny architecture,
// stories260k (trained weights, greedy decoding) and the bf16 copy; thread-count invariance.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <mutex>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"
#include "engine/engine.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

// Records every activation, router output and logits of a pass, keyed like golden.safetensors.
class Trace : public Observer {
 public:
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> indices;
  std::vector<std::vector<float>> window_logits;
  std::mutex mutex;

  void activation(Site site, int layer, const Mat& rows) override {
    static const char* kNames[] = {"embed_out", "layer_in", "attn_out", "router_in", "mlp_out", "layer_out", "final_norm_out"};
    std::string name = kNames[static_cast<int>(site)];
    if (layer >= 0) name += "." + std::to_string(layer);
    tensors[name].assign(rows.data(), rows.data() + rows.size());
  }
  void moe(const MoeChunk& c) override {
    std::string l = std::to_string(c.layer);
    auto& logits = tensors["router_logits." + l];
    logits.insert(logits.end(), c.router_logits, c.router_logits + c.n * c.n_experts);
    auto& w = tensors["topk_weight." + l];
    w.insert(w.end(), c.topk_weight, c.topk_weight + c.n * c.k);
    auto& idx = indices["topk_idx." + l];
    idx.insert(idx.end(), c.topk_idx, c.topk_idx + c.n * c.k);
  }
  bool wants_logits() const override { return true; }
  void logits(size_t window, const float* l, int64_t length, int64_t vocab) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (window_logits.size() <= window) window_logits.resize(window + 1);
    window_logits[window].assign(l, l + length * vocab);
  }
  std::vector<float> all_logits() const {
    std::vector<float> out;
    for (const auto& w : window_logits) out.insert(out.end(), w.begin(), w.end());
    return out;
  }
};

Batch golden_batch(const SafetensorsFile& golden) {
  const TensorInfo* ids = nullptr;
  for (const auto& t : golden.tensors())
    if (t.name == "input_ids") ids = &t;
  REQUIRE(ids != nullptr);
  std::vector<double> v = read_f64(*ids);
  Batch b;
  for (int64_t r = 0; r < ids->shape[0]; ++r) {
    std::vector<int32_t> row;
    for (int64_t t = 0; t < ids->shape[1]; ++t) row.push_back(static_cast<int32_t>(v[r * ids->shape[1] + t]));
    b.add_window(row.data(), static_cast<int64_t>(row.size()));
  }
  return b;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

void check_against_golden(const std::string& dir, const std::string& golden_dir, double atol) {
  CAPTURE(dir);
  Checkpoint ckpt(test::fixture("models/" + dir));
  SafetensorsFile golden(test::fixture("models/" + golden_dir + "/golden.safetensors"));
  Batch batch = golden_batch(golden);
  Trace trace;
  Engine(ckpt, {.threads = 2, .chunk_tokens = 7}).run(batch, trace);  // odd chunk size: chunk seams are exercised
  trace.tensors["logits"] = trace.all_logits();
  int compared = 0;
  for (const auto& t : golden.tensors()) {
    if (t.name == "input_ids" || t.name == "logits_without_sliding_window") continue;
    CAPTURE(t.name);
    std::vector<double> want = read_f64(t);
    if (t.name.rfind("topk_idx", 0) == 0) {
      auto& got = trace.indices[t.name];
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == static_cast<int64_t>(want[i]));
    } else {
      REQUIRE(trace.tensors.count(t.name) == 1);
      double diff = max_abs_diff(trace.tensors[t.name], want);
      CHECK(diff <= atol);
    }
    ++compared;
  }
  CHECK(compared >= 6);
}

}  // namespace

TEST_CASE("logits and activations equal Hugging Face's for every tiny architecture (atol 1e-4)") {
  for (const char* dir : {"tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-mixtral", "tiny-qwen2-moe",
                          "tiny-qwen3-moe", "tiny-olmoe"})
    check_against_golden(dir, dir, 1e-4);
}

TEST_CASE("bf16 and sharded copies (atol 1e-4 against their own golden data)") {
  check_against_golden("tiny-mixtral-bf16", "tiny-mixtral-bf16", 1e-4);
  check_against_golden("tiny-mixtral-sharded", "tiny-mixtral", 1e-4);
}

TEST_CASE("stories260k: trained weights within 3e-4, greedy decoding identical") {
  check_against_golden("stories260k", "stories260k", 3e-4);
  auto meta = nlohmann::json::parse(test::read_text(test::fixture("models/stories260k/golden.json")));
  std::vector<int32_t> seq = meta["greedy_from_bos"]["prompt"].get<std::vector<int32_t>>();
  std::vector<int32_t> expected = meta["greedy_from_bos"]["generated"].get<std::vector<int32_t>>();
  Checkpoint ckpt(test::fixture("models/stories260k"));
  Engine engine(ckpt, {.threads = 2});
  for (size_t step = 0; step < expected.size(); ++step) {
    Batch b;
    b.add_window(seq.data(), static_cast<int64_t>(seq.size()));
    Trace trace;
    engine.run(b, trace);
    const auto& l = trace.window_logits[0];
    int64_t vocab = 512, last = static_cast<int64_t>(seq.size()) - 1;
    int32_t best = static_cast<int32_t>(std::max_element(l.begin() + last * vocab, l.begin() + (last + 1) * vocab) - (l.begin() + last * vocab));
    CHECK(best == expected[step]);
    seq.push_back(expected[step]);
  }
}

TEST_CASE("thread count does not change a single bit") {
  Checkpoint ckpt(test::fixture("models/tiny-qwen2-moe"));
  SafetensorsFile golden(test::fixture("models/tiny-qwen2-moe/golden.safetensors"));
  Batch batch = golden_batch(golden);
  Trace one, four, chunked;
  Engine(ckpt, {.threads = 1}).run(batch, one);
  Engine(ckpt, {.threads = 4}).run(batch, four);
  CHECK(one.all_logits() == four.all_logits());
  CHECK(one.tensors["router_logits.2"] == four.tensors["router_logits.2"]);
  // Chunking changes GEMM shapes, hence rounding, but only at float32 noise level.
  Engine(ckpt, {.threads = 3, .chunk_tokens = 5}).run(batch, chunked);
  auto a = one.all_logits(), b = chunked.all_logits();
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
  CHECK(diff < 1e-5);
}

TEST_CASE("the engine refuses what it cannot run") {
  Checkpoint ds(test::fixture("models/tiny-deepseek-v3"));
  CHECK_THROWS_WITH_AS(Engine{ds}, doctest::Contains("not implemented"), UnsupportedError);
  Checkpoint llama(test::fixture("models/tiny-llama"));
  Batch b;
  int32_t ids[] = {1, 300};
  b.add_window(ids, 2);
  Trace t;
  CHECK_THROWS_WITH_AS(Engine(llama).run(b, t), doctest::Contains("outside the vocabulary"), UsageError);
}
