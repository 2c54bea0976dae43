// DeepSeek-V3 (MLA, YaRN, q_lora_rank set and unset), GLM-4-MoE (with and without q/k norm) and
// gpt-oss (plain and MXFP4 experts) against transformers 5.2.0's golden activations
// (tests/reference/families).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "engine/engine.hpp"
#include "formats/checkpoint.hpp"
#include "formats/mxfp4.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/test_support.hpp"
#include "tests/unit/golden_trace.hpp"

using namespace moeforge;

namespace {

void golden(const std::string& dir, const std::string& golden_dir) {
  auto r = test::check_against_golden(test::family_model(dir), test::family_model(golden_dir + "/golden.safetensors"), 1e-4);
  MESSAGE(dir << ": max abs diff " << r.max_diff << " (" << r.worst << "), " << r.compared << " tensors, expert choices differing: "
              << r.index_mismatches);
}

}  // namespace

TEST_CASE("deepseek_v3: MLA without q_lora_rank, YaRN with mscale, groups, shared experts (atol 1e-4)") {
  golden("tiny-deepseek-v3-yarn", "tiny-deepseek-v3-yarn");
  golden("tiny-deepseek-v3-yarn-fused", "tiny-deepseek-v3-yarn");  // transformers-v5 fused layout
}

TEST_CASE("glm4_moe: partial rotary, attention biases, q/k norm on and off (atol 1e-4)") {
  golden("tiny-glm4-moe", "tiny-glm4-moe");
  golden("tiny-glm4-moe-noqknorm", "tiny-glm4-moe-noqknorm");
}

TEST_CASE("gpt_oss: sinks, sliding/full layers, YaRN, biased clamped experts; plain and MXFP4 (atol 1e-4)") {
  golden("tiny-gpt-oss", "tiny-gpt-oss");
  golden("tiny-gpt-oss-mxfp4", "tiny-gpt-oss");
}

TEST_CASE("MXFP4: E2M1 values, E8M0 scales, nibble order") {
  // One row of 32 values: bytes 0x10, 0x32, ... (low nibble first), scale 2^(128 − 127) = 2.
  uint8_t blocks[16], scales[1] = {128};
  for (int i = 0; i < 16; ++i) blocks[i] = static_cast<uint8_t>(((2 * i + 1) % 16) << 4 | ((2 * i) % 16));
  float out[32];
  dequantize_mxfp4(blocks, scales, 1, 32, out);
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int c = 0; c < 32; ++c) CHECK(out[c] == 2 * e2m1[c % 16]);
  CHECK(std::signbit(out[8]));
  scales[0] = 120;  // 2^-7
  dequantize_mxfp4(blocks, scales, 1, 32, out);
  CHECK(out[7] == 6.0f / 128);
}

