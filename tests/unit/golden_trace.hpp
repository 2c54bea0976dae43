// Comparing a forward pass with Hugging Face's golden activations: an observer that records every
// activation, router output and logits keyed like golden.safetensors, and the comparison itself.
#pragma once
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "formats/safetensors.hpp"

namespace moeforge::test {

class Trace : public Observer {
 public:
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> indices;
  std::vector<std::vector<float>> window_logits;
  std::mutex mutex;

  void activation(Site site, int layer, const Mat& rows) override;
  void moe(const MoeChunk& c) override;
  bool wants_logits() const override { return true; }
  void logits(size_t window, const float* l, int64_t length, int64_t vocab) override;
  std::vector<float> all_logits() const;
};

Batch golden_batch(const SafetensorsFile& golden);

struct GoldenResult {
  double max_diff = 0;         // over every float tensor
  std::string worst;           // the tensor where it is largest
  int compared = 0;            // tensors compared
  int index_mismatches = 0;    // topk_idx entries that differ
};
// Runs `model` on golden's input_ids (2 threads, odd chunk size) and compares every tensor; CHECKs
// each within atol and every expert index exactly.
GoldenResult check_against_golden(const std::filesystem::path& model, const std::filesystem::path& golden, double atol);

}  // namespace moeforge::test
