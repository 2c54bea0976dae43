#include "tests/unit/golden_trace.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "formats/checkpoint.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge::test {

void Trace::activation(Site site, int layer, const Mat& rows) {
  static const char* kNames[] = {"embed_out", "layer_in", "attn_out", "router_in", "mlp_out", "layer_out", "final_norm_out"};
  std::string name = kNames[static_cast<int>(site)];
  if (layer >= 0) name += "." + std::to_string(layer);
  tensors[name].assign(rows.data(), rows.data() + rows.size());
}

void Trace::moe(const MoeChunk& c) {
  std::string l = std::to_string(c.layer);
  auto& logits = tensors["router_logits." + l];
  logits.insert(logits.end(), c.router_logits, c.router_logits + c.n * c.n_experts);
  auto& w = tensors["topk_weight." + l];
  w.insert(w.end(), c.topk_weight, c.topk_weight + c.n * c.k);
  auto& idx = indices["topk_idx." + l];
  idx.insert(idx.end(), c.topk_idx, c.topk_idx + c.n * c.k);
}

void Trace::logits(size_t window, const float* l, int64_t length, int64_t vocab) {
  std::lock_guard<std::mutex> lock(mutex);
  if (window_logits.size() <= window) window_logits.resize(window + 1);
  window_logits[window].assign(l, l + length * vocab);
}

std::vector<float> Trace::all_logits() const {
  std::vector<float> out;
  for (const auto& w : window_logits) out.insert(out.end(), w.begin(), w.end());
  return out;
}

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

GoldenResult check_against_golden(const std::filesystem::path& model, const std::filesystem::path& golden_path, double atol) {
  CAPTURE(model.string());
  GoldenResult r;
  Checkpoint ckpt(model);
  SafetensorsFile golden(golden_path);
  Batch batch = golden_batch(golden);
  Trace trace;
  Engine(ckpt, {.threads = 2, .chunk_tokens = 7}).run(batch, trace);  // odd chunk size: chunk seams are exercised
  trace.tensors["logits"] = trace.all_logits();
  for (const auto& t : golden.tensors()) {
    if (t.name == "input_ids" || t.name == "logits_without_sliding_window") continue;
    CAPTURE(t.name);
    std::vector<double> want = read_f64(t);
    if (t.name.rfind("topk_idx", 0) == 0) {
      auto& got = trace.indices[t.name];
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        CHECK(got[i] == static_cast<int64_t>(want[i]));
        r.index_mismatches += got[i] != static_cast<int64_t>(want[i]);
      }
    } else {
      REQUIRE(trace.tensors.count(t.name) == 1);
      const auto& got = trace.tensors[t.name];
      REQUIRE(got.size() == want.size());
      double diff = 0;
      for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
      CHECK(diff <= atol);
      if (diff > r.max_diff) {
        r.max_diff = diff;
        r.worst = t.name;
      }
    }
    ++r.compared;
  }
  CHECK(r.compared >= 6);
  return r;
}

}  // namespace moeforge::test
