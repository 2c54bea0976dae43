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
#include "tests/unit/golden_trace.hpp"

using moeforge::test::Trace;
using moeforge::test::golden_batch;

using namespace moeforge;

namespace {

void check_against_golden(const std::string& dir, const std::string& golden_dir, double atol) {
  test::check_against_golden(test::fixture("models/" + dir), test::fixture("models/" + golden_dir + "/golden.safetensors"), atol);
}

}  // namespace

TEST_CASE("logits and activations equal Hugging Face's for every tiny architecture (atol 1e-4)") {
  for (const char* dir : {"tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-mixtral", "tiny-qwen2-moe",
                          "tiny-qwen3-moe", "tiny-olmoe", "tiny-deepseek-v3"})
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
  Checkpoint llama(test::fixture("models/tiny-llama"));
  Batch b;
  int32_t ids[] = {1, 300};
  b.add_window(ids, 2);
  Trace t;
  CHECK_THROWS_WITH_AS(Engine(llama).run(b, t), doctest::Contains("outside the vocabulary"), UsageError);
}
