// GGUF metadata and refusals for glm4_moe (glm4moe) and gpt_oss (gpt-oss): the keys llama.cpp's
// loaders read, taken from config.json, and the configurations llama.cpp cannot run.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "model/gguf_arch.hpp"
#include "model/model_config.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

nlohmann::json reference_config(const std::string& model) {
  return nlohmann::json::parse(test::read_text(test::family_model(model) / "config.json"));
}

nlohmann::ordered_json metadata_of(const nlohmann::json& config) {
  ModelConfig c = resolve_config(config, "test config");
  std::vector<std::string> warnings;
  const GgufArch& a = *find_gguf_arch(c.family->model_type);
  check_gguf_representable(a, c, &warnings);
  return gguf_model_metadata(a, c, "t", 0);
}

void refused(const nlohmann::json& config, const std::string& why) {
  ModelConfig c = resolve_config(config, "test config");
  std::vector<std::string> warnings;
  try {
    check_gguf_representable(*find_gguf_arch(c.family->model_type), c, &warnings);
    FAIL("not refused: " << why);
  } catch (const UnsupportedError& e) {
    CHECK(std::string(e.what()).find(why) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("gguf glm4moe: routing, shared expert, dense lead and partial RoPE keys follow config.json") {
  auto cfg = reference_config("tiny-glm4-moe");
  cfg["norm_topk_prob"] = false;
  cfg["routed_scaling_factor"] = 2.5;
  cfg["first_k_dense_replace"] = 0;
  cfg["partial_rotary_factor"] = 0.25;
  auto m = metadata_of(cfg);
  CHECK(m["glm4moe.expert_weights_norm"]["value"] == false);
  CHECK(m["glm4moe.expert_weights_norm"]["type"] == "BOOL");
  CHECK(m["glm4moe.expert_weights_scale"]["value"].get<float>() == 2.5f);
  CHECK(m["glm4moe.leading_dense_block_count"]["value"] == 0);
  CHECK(m["glm4moe.rope.dimension_count"]["value"] == cfg["head_dim"].get<int>() / 4);
  CHECK(m["glm4moe.expert_gating_func"]["value"] == 2);
  CHECK(m["glm4moe.expert_shared_count"]["value"].get<int64_t>() == cfg["n_shared_experts"].get<int64_t>());
  CHECK(m["glm4moe.expert_feed_forward_length"]["value"].get<int64_t>() == cfg["moe_intermediate_size"].get<int64_t>());
  CHECK(m["glm4moe.nextn_predict_layers"]["value"] == 0);
}

TEST_CASE("gguf gpt-oss: sliding window, expert FFN and YaRN keys; layouts llama.cpp cannot run are refused") {
  auto cfg = reference_config("tiny-gpt-oss");
  auto m = metadata_of(cfg);
  CHECK(m["gpt-oss.attention.sliding_window"]["value"].get<int64_t>() == cfg["sliding_window"].get<int64_t>());
  CHECK(m["gpt-oss.expert_feed_forward_length"]["value"].get<int64_t>() == cfg["intermediate_size"].get<int64_t>());
  CHECK(m["gpt-oss.rope.scaling.type"]["value"] == "yarn");
  CHECK(m["gpt-oss.rope.scaling.original_context_length"]["value"].get<int64_t>() == cfg["rope_scaling"]["original_max_position_embeddings"].get<int64_t>());

  auto swapped = cfg;
  swapped["layer_types"] = {"full_attention", "sliding_attention"};
  refused(swapped, "layer 0 attends to the whole context");
  auto all_full = cfg;
  all_full["layer_types"] = {"full_attention", "full_attention"};
  refused(all_full, "needs a sliding_window");
  auto limit = cfg;
  limit["swiglu_limit"] = 10.0;
  refused(limit, "clamps SwiGLU at 7");
}
