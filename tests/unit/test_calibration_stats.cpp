// Calibration statistics: a hand-computed REAP case, exactness under re-chunking and file
// splits, and the statistics file round trip.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/engine.hpp"
#include "engine/feed_forward.hpp"
#include "engine/stats_file.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

TEST_CASE("REAP, EAN and max activation of a hand-computed case") {
  // 2 experts, top-1, three tokens; token 1 is masked out. Gates are the softmax probabilities
  // (a family without renormalisation; with top-1 and renormalisation the gate would be 1).
  float logits[] = {2, 1, 0, 3, 4, 0};
  float probs[6];
  int32_t idx[3];
  float weight[3];
  route(logits, 3, 2, 1, false, probs, idx, weight);
  CHECK(idx[0] == 0);
  CHECK(idx[1] == 1);
  CHECK(idx[2] == 0);
  float expert_out[] = {3, 4, 7, 7, 5, 12};  // outputs of each token's chosen expert
  float zeros[6] = {};
  MoeChunk c;
  c.n = 3;
  c.hidden = 2;
  c.n_experts = 2;
  c.k = 1;
  c.router_logits = logits;
  c.probs = probs;
  c.topk_idx = idx;
  c.topk_weight = weight;
  c.expert_out = expert_out;
  c.routed_out = zeros;
  c.residual = nullptr;
  uint8_t mask[] = {1, 0, 1};
  ExpertLayerStats s;
  s.init(2, 2, false);
  accumulate(s, c, mask);
  double p0_t0 = std::exp(2.0) / (std::exp(2.0) + std::exp(1.0));
  double p0_t2 = std::exp(4.0) / (std::exp(4.0) + 1.0);
  CHECK(s.count[0] == 2);
  CHECK(s.count[1] == 0);
  CHECK(s.ean_sum[0] == 18);
  CHECK(s.ean_sum[1] == 0);
  CHECK(s.ean_mean()[0] == 9);
  CHECK(s.ean_mean()[1] == 0);
  CHECK(s.max_act[0] == 12);
  CHECK(s.max_act[1] == 0);
  CHECK(s.reap()[0] == doctest::Approx((5 * p0_t0 + 13 * p0_t2) / 2).epsilon(1e-7));
  CHECK(s.reap()[1] == 0);
  CHECK(s.tokens == 2);
  CHECK(s.output_sum(0, 0) == 8);
  CHECK(s.output_sum(0, 1) == 16);
}

namespace {

DataSet btx_data(const std::vector<std::string>& domains, int64_t max_tokens) {
  DataOptions o;
  o.seq_len = 128;
  o.max_tokens = max_tokens;
  o.vocab = 256;
  std::vector<DataFile> files;
  for (const auto& d : domains) files.push_back(load_data(test::fixture("corpora/" + d + "/calib.txt"), DataKind::kBytes, o));
  return combine(std::move(files));
}

void check_same(const ExpertLayerStats& a, const ExpertLayerStats& b, double tol) {
  CHECK(a.count == b.count);
  CHECK(a.top1_count == b.top1_count);
  CHECK(a.tokens == b.tokens);
  CHECK(a.coactivation == b.coactivation);
  CHECK((a.reap_sum - b.reap_sum).cwiseAbs().maxCoeff() <= tol * (1 + a.reap_sum.cwiseAbs().maxCoeff()));
  CHECK((a.output_sum - b.output_sum).cwiseAbs().maxCoeff() <= tol * (1 + a.output_sum.cwiseAbs().maxCoeff()));
  CHECK(a.max_act == b.max_act);
}

}  // namespace

// Keeps copies of every MoE chunk of one layer, so they can be re-fed in any slicing.
class ChunkRecorder : public Observer {
 public:
  struct Copy {
    MoeChunk chunk;
    std::vector<float> input, residual, logits, probs, weight, expert_out, routed, block;
    std::vector<int32_t> idx;
  };
  std::vector<std::unique_ptr<Copy>> chunks;
  void moe(const MoeChunk& c) override {
    if (c.layer != 1) return;
    auto k = std::make_unique<Copy>();
    auto take = [](const auto* p, int64_t n, auto& v) { v.assign(p, p + n); return v.data(); };
    k->chunk = c;
    k->chunk.input = take(c.input, c.n * c.hidden, k->input);
    k->chunk.residual = take(c.residual, c.n * c.hidden, k->residual);
    k->chunk.router_logits = take(c.router_logits, c.n * c.n_experts, k->logits);
    k->chunk.probs = take(c.probs, c.n * c.n_experts, k->probs);
    k->chunk.topk_idx = take(c.topk_idx, c.n * c.k, k->idx);
    k->chunk.topk_weight = take(c.topk_weight, c.n * c.k, k->weight);
    k->chunk.expert_out = take(c.expert_out, c.n * c.k * c.hidden, k->expert_out);
    k->chunk.routed_out = take(c.routed_out, c.n * c.hidden, k->routed);
    k->chunk.block_out = take(c.block_out, c.n * c.hidden, k->block);
    k->chunk.all_expert_out = nullptr;
    chunks.push_back(std::move(k));
  }
};

TEST_CASE("statistics are exact sums however tokens are sliced, threaded or split into files") {
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  DataSet both = btx_data({"en", "de"}, 2048);
  // The same per-token values fed whole or in slices of 7 tokens give identical sums.
  ChunkRecorder rec;
  Engine(ckpt).run(both.batch, rec);
  REQUIRE(rec.chunks.size() == 1);
  const MoeChunk& whole = rec.chunks[0]->chunk;
  ExpertLayerStats one, sliced;
  one.init(4, 64, false);
  sliced.init(4, 64, false);
  accumulate(one, whole, nullptr);
  for (int64_t t = 0; t < whole.n; t += 7) accumulate(sliced, whole.slice(t, std::min(whole.n, t + 7)), nullptr);
  check_same(one, sliced, 0);
  CHECK(one.easy_ep_sum == sliced.easy_ep_sum);
  CHECK(one.logit_gram == sliced.logit_gram);

  // Any thread count: identical bits; another chunk size: float32 noise only.
  CalibrationStats a = observe(Engine(ckpt, {.threads = 2}), both, true);
  CalibrationStats b = observe(Engine(ckpt, {.threads = 1}), both, true);
  CalibrationStats c = observe(Engine(ckpt, {.threads = 2, .chunk_tokens = 300}), both, true);
  REQUIRE(a.files.size() == 2);
  CHECK(a.files[0].tokens == 2048);
  for (int l = 0; l < 2; ++l)
    for (size_t f = 0; f < 2; ++f) {
      check_same(a.files[f].experts[l], b.files[f].experts[l], 0);
      CHECK(a.files[f].experts[l].output_cos_sum == b.files[f].experts[l].output_cos_sum);
      CHECK(a.files[f].experts[l].count == c.files[f].experts[l].count);
      CHECK((a.files[f].experts[l].reap_sum - c.files[f].experts[l].reap_sum).cwiseAbs().maxCoeff() < 1e-3);
    }
  // One file with en followed by de equals the merge of the two files.
  DataSet en = btx_data({"en"}, 2048), de = btx_data({"de"}, 2048);
  CalibrationStats e1 = observe(Engine(ckpt), en, false), e2 = observe(Engine(ckpt), de, false);
  FileStats merged = a.merged();
  for (int l = 0; l < 2; ++l) {
    ExpertLayerStats sum = e1.files[0].experts[l];
    sum.merge(e2.files[0].experts[l]);
    CHECK(sum.count == merged.experts[l].count);
    CHECK(sum.tokens == merged.experts[l].tokens);
  }
}

TEST_CASE("statistics file round trip and model checks") {
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  CalibrationStats s = observe(Engine(ckpt), btx_data({"py"}, 1024), true);
  test::ScratchDir dir("stats");
  {
    OutputTransaction tx(false);
    write_stats(s, tx, dir / "s.safetensors");
    tx.commit();
  }
  CHECK(is_stats_file(dir / "s.safetensors"));
  CHECK_FALSE(is_stats_file(test::fixture("models/tiny-llama/model.safetensors")));
  CalibrationStats r = read_stats(dir / "s.safetensors");
  CHECK(r.model_type == "mixtral");
  CHECK(r.files[0].tokens == 1024);
  for (int l = 0; l < 2; ++l) {
    check_same(s.files[0].experts[l], r.files[0].experts[l], 0);
    CHECK(s.files[0].experts[l].output_cos_sum == r.files[0].experts[l].output_cos_sum);
    CHECK(s.files[0].router_input_sum[l] == r.files[0].router_input_sum[l]);
  }
  ModelConfig same = resolve_config(ckpt.config(), "config.json");
  check_stats_match(r, same, "s.safetensors");
  ModelConfig other = resolve_config(Checkpoint(test::fixture("models/tiny-mixtral")).config(), "tiny/config.json");
  CHECK_THROWS_WITH_AS(check_stats_match(r, other, "s.safetensors"), doctest::Contains("statistics are for a model with layers 2"), MismatchError);
  CHECK_THROWS_WITH_AS(read_stats(test::fixture("models/tiny-llama/model.safetensors")), doctest::Contains("not a moeforge statistics file"), FormatError);
}

TEST_CASE("data files: formats and errors") {
  test::ScratchDir dir("data");
  DataOptions o;
  o.seq_len = 3;
  o.vocab = 10;
  test::write_bytes(dir / "a.jsonl", "{\"input_ids\": [1,2,3,4]}\n[5,6]\n\n");
  DataFile f = load_data(dir / "a.jsonl", DataKind::kTokenIds, o);
  REQUIRE(f.batch.windows.size() == 3);  // [1,2,3] [4] [5,6]
  CHECK(f.batch.windows[1].length == 1);
  CHECK(f.batch.tokens == std::vector<int32_t>{1, 2, 3, 4, 5, 6});
  test::write_bytes(dir / "b.jsonl", "{\"input_ids\": [1,2]}\n{\"text\": \"hello\"}\n");
  CHECK_THROWS_WITH_AS(load_data(dir / "b.jsonl", DataKind::kTokenIds, o), doctest::Contains("b.jsonl:2"), FormatError);
  test::write_bytes(dir / "c.jsonl", "[1, 99]\n");
  CHECK_THROWS_WITH_AS(load_data(dir / "c.jsonl", DataKind::kTokenIds, o), doctest::Contains("outside the vocabulary"), FormatError);
  test::write_bytes(dir / "d.bin", std::string("\x01\x00\x02\x00\x03", 5));
  CHECK_THROWS_WITH_AS(load_data(dir / "d.bin", DataKind::kTokenIds, o), doctest::Contains("not a whole number of uint16"), FormatError);
  test::write_bytes(dir / "e.bin", std::string("\x01\x00\x02\x00\x03\x00\x04\x00", 8));
  o.max_tokens = 3;
  CHECK(load_data(dir / "e.bin", DataKind::kTokenIds, o).batch.tokens == std::vector<int32_t>{1, 2, 3});
  CHECK_THROWS_AS(load_data(dir / "e.txt", DataKind::kTokenIds, o), IoError);
}
