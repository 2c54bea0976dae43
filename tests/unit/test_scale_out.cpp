// Scale-out calibration: the window split, per-token values independent of which windows share
// a batch, shards merged equal to the whole, and the merge's refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/engine.hpp"
#include "engine/stats_file.hpp"
#include "engine/stats_merge.hpp"
#include "formats/checkpoint.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

// Every routed expert output and router logit per token of the batch.
class TokenRecorder : public Observer {
 public:
  std::map<std::pair<int, int64_t>, std::vector<float>> out;  // (layer, token) → [k·H outputs, E logits]
  void moe(const MoeChunk& c) override {
    for (int64_t t = 0; t < c.n; ++t) {
      auto& v = out[{c.layer, c.token_begin + t}];
      v.assign(c.expert_out + t * c.k * c.hidden, c.expert_out + (t + 1) * c.k * c.hidden);
      v.insert(v.end(), c.router_logits + t * c.n_experts, c.router_logits + (t + 1) * c.n_experts);
    }
  }
};

DataSet bytes_data(const std::vector<std::string>& domains, int64_t max_tokens, int64_t seq_len = 128) {
  DataOptions o;
  o.seq_len = seq_len;
  o.max_tokens = max_tokens;
  o.vocab = 256;
  std::vector<DataFile> files;
  for (const auto& d : domains) files.push_back(load_data(test::fixture("corpora/" + d + "/calib.txt"), DataKind::kBytes, o));
  return combine(std::move(files));
}

}  // namespace

TEST_CASE("SHA-256 test vectors (FIPS 180-4 examples)") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");  // 56 bytes: the length needs a second block
  std::string million(1000000, 'a');
  CHECK(sha256_hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256 pieces;  // the same bytes fed in odd pieces
  for (size_t i = 0; i < million.size(); i += 997) pieces.update(million.data() + i, std::min<size_t>(997, million.size() - i));
  CHECK(pieces.hex() == sha256_hex(million));
  test::ScratchDir dir("sha");
  test::write_bytes(dir / "a", "abc");
  CHECK(sha256_file(dir / "a") == sha256_hex("abc"));
}

TEST_CASE("split_windows: consecutive whole segments, balanced by tokens, the same split when split again") {
  Batch b;
  std::vector<int32_t> ids(100, 1);
  for (int64_t len : {10, 30, 5, 50, 20, 20, 7, 100, 3, 40, 40, 1}) b.add_window(ids.data(), len);
  const WindowRange all{0, b.windows.size()};
  auto segments = segment_windows(b, all, 60);
  CHECK(segments.size() == 6);  // [10 30 5] [50] [20 20 7] [100] [3 40] [40 1]
  CHECK(segments[3] == WindowRange{7, 8});
  for (int parts : {1, 2, 3, 5, 7}) {
    CAPTURE(parts);
    size_t cursor = 0;
    for (int k = 1; k <= parts; ++k) {
      WindowRange r = split_windows(b, all, k, parts, 60);
      CHECK(r.first == cursor);  // consecutive, disjoint, covering
      cursor = r.last;
      bool on_boundary = r.first == b.windows.size();
      for (const auto& s : segments) on_boundary = on_boundary || s.first == r.first;
      CHECK(on_boundary);
    }
    CHECK(cursor == b.windows.size());
  }
  // 2 parts of 326 tokens: segments starting at tokens 0, 45, 95, 142 (< 163) form part 1.
  CHECK(split_windows(b, all, 1, 2, 60) == WindowRange{0, 8});
  // Splitting part 2 of 2 again yields segments of the whole batch.
  WindowRange second = split_windows(b, all, 2, 2, 60);
  auto again = segment_windows(b, second, 60);
  CHECK(again.front() == segments[4]);
  CHECK(again.back() == segments[5]);
}

TEST_CASE("per-token values do not depend on the other windows of the batch") {
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  DataSet data = bytes_data({"en", "de"}, 8192);
  TokenRecorder whole, part;
  Engine(ckpt, {.chunk_tokens = 1000}).run(data.batch, whole);
  WindowRange r = split_windows(data.batch, {0, data.batch.windows.size()}, 2, 3, 1000);
  REQUIRE(r.first > 0);
  Engine(ckpt, {.chunk_tokens = 1000}).run(slice_windows(data.batch, r), part);
  int64_t offset = data.batch.windows[r.first].offset;
  int differing = 0;
  for (const auto& [key, v] : part.out) {
    const auto& w = whole.out.at({key.first, key.second + offset});
    if (v != w) ++differing;
  }
  CHECK(differing == 0);
}

namespace {

StatsInput shard_input(const Engine& engine, const DataSet& data, int k, int n, nlohmann::json options = nlohmann::json::object()) {
  CalibrationStats s = observe(engine, data, ObserveOptions{.all_outputs = true, .shard = {k, n}, .data_options = options});
  return {"s" + std::to_string(k) + "of" + std::to_string(n), to_tensors(s)};
}

// max |a − b| / max |b| per tensor, worst over tensors; counts, token totals and maxima must match exactly.
double worst_relative(const StatsTensors& a, const StatsTensors& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  double worst = 0;
  for (const auto& tb : b.tensors) {
    CAPTURE(tb.name);
    const StatTensor* ta = a.find(tb.name);
    REQUIRE(ta != nullptr);
    double scale = 0, diff = 0;
    for (size_t i = 0; i < tb.values.size(); ++i) {
      scale = std::max(scale, std::fabs(tb.values[i]));
      diff = std::max(diff, std::fabs(ta->values[i] - tb.values[i]));
    }
    std::string stat = tb.name.substr(tb.name.rfind('.') + 1);
    if (stat == "count" || stat == "top1_count" || stat == "coactivation" || stat == "tokens" || stat == "max_act") CHECK(diff == 0);
    if (scale > 0) worst = std::max(worst, diff / scale);
  }
  return worst;
}

}  // namespace

// "slow": numerics, run in the release build only (the refusals below exercise the same merging
// code under the sanitizers in a fraction of the time).
TEST_CASE("shards 1..5 merged equal one observe over all the data (every statistic tensor, 1e-9)" * doctest::test_suite("slow")) {
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  Engine engine(ckpt, {.chunk_tokens = 700});  // many segments, so every shard holds several
  DataSet data = bytes_data({"en", "de", "py"}, 6000, 100);
  StatsTensors whole = to_tensors(observe(engine, data, ObserveOptions{.all_outputs = true}));
  std::vector<StatsInput> shards;
  for (int k : {4, 2, 5, 1, 3}) shards.push_back(shard_input(engine, data, k, 5));
  MergeOutcome m = merge_stats(shards, false);
  CHECK(m.incomplete.empty());
  double worst = worst_relative(m.stats, whole);
  MESSAGE("largest relative difference per tensor, 5 shards merged vs whole: " << worst);
  CHECK(worst <= 1e-9);
  // The description reads back like the whole run's, with the pieces in window order.
  CalibrationStats merged = from_tensors(m.stats, "merged");
  CHECK(merged.files.size() == 3);
  CHECK(merged.files[2].tokens == 6000);
  const auto& pieces = m.stats.description["run"]["datasets"][0]["pieces"];
  REQUIRE(pieces.size() == 5);
  for (int k = 0; k < 5; ++k) CHECK(pieces[k]["shard"] == nlohmann::json{k + 1, 5});
  // Merging is independent of the order of the inputs, bit for bit.
  std::vector<StatsInput> reversed(shards.rbegin(), shards.rend());
  CHECK(worst_relative(merge_stats(reversed, false).stats, m.stats) == 0);
  // One shard of another split that tiles the gap is accepted: 1/2 + the shards of 2/2's windows.
  std::vector<StatsInput> mixed = {shard_input(engine, data, 1, 2), shard_input(engine, data, 2, 2)};
  CHECK(worst_relative(merge_stats(mixed, false).stats, whole) <= 1e-9);
}

TEST_CASE("merging refuses overlaps, duplicates, gaps, other models, options and statistics") {
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  Engine engine(ckpt, {.chunk_tokens = 700});
  DataSet data = bytes_data({"en"}, 6000, 100);
  StatsInput a = shard_input(engine, data, 1, 3), b = shard_input(engine, data, 2, 3), c = shard_input(engine, data, 3, 3);
  StatsInput half = shard_input(engine, data, 1, 2);
  CHECK_THROWS_WITH_AS(merge_stats({a, c}, false), doctest::Contains("missing shards 2/3"), MismatchError);
  CHECK(merge_stats({a, c}, true).incomplete.size() == 1);
  CHECK_THROWS_WITH_AS(merge_stats({a, b, b, c}, false), doctest::Contains("duplicate shard 2/3"), MismatchError);
  CHECK_THROWS_WITH_AS(merge_stats({half, b, c}, false), doctest::Contains("overlap"), MismatchError);
  StatsInput other_options = shard_input(engine, data, 2, 3, {{"seq-len", 64}});
  CHECK_THROWS_WITH_AS(merge_stats({a, other_options, c}, false), doctest::Contains("different options"), MismatchError);
  StatsInput other_model = b;
  other_model.stats.description["run"]["model_fingerprint"] = std::string(64, '0');
  CHECK_THROWS_WITH_AS(merge_stats({a, other_model, c}, false), doctest::Contains("different models"), MismatchError);
  StatsInput other_shape = b;
  other_shape.stats.description["n_experts"] = 8;
  CHECK_THROWS_WITH_AS(merge_stats({a, other_shape, c}, false), doctest::Contains("n_experts 4 vs 8"), MismatchError);
  StatsInput fewer = b;
  fewer.stats.tensors.pop_back();
  CHECK_THROWS_WITH_AS(merge_stats({a, fewer, c}, false), doctest::Contains("hold different statistics"), MismatchError);
  // Different data (another domain) combines: its files are appended; one file twice is refused.
  DataSet de = bytes_data({"de"}, 6000, 100);
  StatsInput german = shard_input(engine, de, 1, 1);
  MergeOutcome both = merge_stats({a, b, c, german}, false);
  CHECK(both.stats.description["files"].size() == 2);
  CHECK(both.stats.description["run"]["datasets"].size() == 2);
  DataSet en_de = bytes_data({"en", "de"}, 6000, 100);
  CHECK_THROWS_WITH_AS(merge_stats({german, shard_input(engine, en_de, 1, 1)}, false), doctest::Contains("part of two different calibrations"),
                       MismatchError);
}

TEST_CASE("the reduction table: statistics sum unless listed, max_act takes the maximum") {
  CHECK(reduction_of("files.0.layers.3.max_act") == Reduction::kMax);
  CHECK(reduction_of("files.0.layers.3.count") == Reduction::kSum);
  CHECK(reduction_of("files.2.layers.0.router_xtx_sum") == Reduction::kSum);  // a statistic added later: a sum
  Checkpoint ckpt(test::fixture("models/btx-bytes/merged-mixtral-top2"));
  Engine engine(ckpt, {.chunk_tokens = 700});
  DataSet data = bytes_data({"en"}, 3000, 100);
  StatsInput a = shard_input(engine, data, 1, 2), b = shard_input(engine, data, 2, 2);
  // A tensor moeforge does not know merges by the rule and survives into the merged file.
  a.stats.tensors.push_back({"files.0.layers.1.custom_sum", {2}, {1.5, -2}});
  b.stats.tensors.push_back({"files.0.layers.1.custom_sum", {2}, {0.25, 4}});
  a.stats.tensors.push_back({"summary.max_act", {1}, {3}});
  b.stats.tensors.push_back({"summary.max_act", {1}, {7}});
  MergeOutcome m = merge_stats({a, b}, false);
  CHECK(m.stats.find("files.0.layers.1.custom_sum")->values == std::vector<double>{1.75, 2});
  CHECK(m.stats.find("summary.max_act")->values == std::vector<double>{7});
  const StatTensor* ma = m.stats.find("files.0.layers.1.max_act");
  for (size_t e = 0; e < 4; ++e)
    CHECK(ma->values[e] == std::max(a.stats.find("files.0.layers.1.max_act")->values[e], b.stats.find("files.0.layers.1.max_act")->values[e]));
}
