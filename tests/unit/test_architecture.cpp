// Architecture tables and inspect against the fixtures: families, experts, parameter counts
// (checked against an independent count from config sizes), warnings for broken checkpoints.
#include <doctest/doctest.h>

#include "formats/checkpoint.hpp"
#include "model/architecture.hpp"
#include "model/inspection.hpp"
#include "model/model_config.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;

namespace {

struct Expect {
  const char* dir;
  const char* family;
  int experts;
  int top_k;
  int moe_layers;
  int shared;
};

// Independent count: the sum over tensors of shape products (total), and total minus the
// unused experts computed from the config sizes: (E − k) × 3 × hidden × expert width per MoE layer.
uint64_t independent_active(uint64_t total, const nlohmann::json& cfg, int experts, int top_k, int moe_layers) {
  if (experts == 0) return total;
  int64_t hidden = cfg["hidden_size"];
  int64_t width = cfg.contains("moe_intermediate_size") ? cfg["moe_intermediate_size"].get<int64_t>() : cfg["intermediate_size"].get<int64_t>();
  return total - static_cast<uint64_t>(moe_layers) * static_cast<uint64_t>(experts - top_k) * 3u * static_cast<uint64_t>(hidden * width);
}

}  // namespace

TEST_CASE("inspect: every fixture's family, experts and parameter counts") {
  const Expect cases[] = {
      {"tiny-llama", "llama", 0, 0, 0, 0},         {"tiny-mistral", "mistral", 0, 0, 0, 0},
      {"tiny-qwen2", "qwen2", 0, 0, 0, 0},         {"tiny-qwen3", "qwen3", 0, 0, 0, 0},
      {"stories260k", "llama", 0, 0, 0, 0},        {"tiny-mixtral", "mixtral", 8, 2, 3, 0},
      {"tiny-mixtral-bf16", "mixtral", 8, 2, 3, 0}, {"tiny-mixtral-sharded", "mixtral", 8, 2, 3, 0},
      {"tiny-qwen2-moe", "qwen2_moe", 8, 2, 3, 1}, {"tiny-qwen3-moe", "qwen3_moe", 8, 2, 3, 0},
      {"tiny-olmoe", "olmoe", 8, 2, 3, 0},         {"tiny-deepseek-v3", "deepseek_v3", 8, 2, 2, 1},
      {"btx-bytes/merged-mixtral-top2", "mixtral", 4, 2, 2, 0},
  };
  for (const auto& c : cases) {
    CAPTURE(c.dir);
    Checkpoint ckpt(test::fixture(std::string("models/") + c.dir));
    auto r = inspect_checkpoint(ckpt, {});
    CHECK(r["family"] == c.family);
    CHECK(r["warnings"].empty());
    uint64_t total = 0;
    for (const auto& shard : ckpt.shards()) {  // straight from the headers
      for (const auto& t : shard->tensors()) {
        uint64_t n = 1;
        for (auto d : t.shape) n *= static_cast<uint64_t>(d);
        total += n;
      }
    }
    CHECK(r["parameters"]["total"].get<uint64_t>() == total);
    CHECK(r["parameters"]["active_per_token"].get<uint64_t>() ==
          independent_active(total, ckpt.config(), c.experts, c.top_k, c.moe_layers));
    if (c.experts > 0) {
      CHECK(r["experts"] == c.experts);
      CHECK(r["experts_per_token"] == c.top_k);
      CHECK(r["moe_layers"] == c.moe_layers);
      CHECK(r["shared_experts"] == c.shared);
      for (const auto& n : r["experts_per_layer"]) CHECK(n == c.experts);
    }
  }
}

TEST_CASE("tables name exactly the tensors Hugging Face writes") {
  for (const char* dir : {"tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-mixtral", "tiny-qwen2-moe",
                          "tiny-qwen3-moe", "tiny-olmoe", "tiny-deepseek-v3"}) {
    CAPTURE(dir);
    Checkpoint ckpt(test::fixture(std::string("models/") + dir));
    ModelConfig c = resolve_config(ckpt.config(), "config.json");
    auto expected = expected_tensors(c);
    auto golden = nlohmann::json::parse(test::read_text(test::fixture(std::string("models/") + dir + "/golden.json")));
    std::vector<std::string> names;
    for (const auto& e : expected) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    CHECK(names == golden["tensor_names"].get<std::vector<std::string>>());
  }
}

TEST_CASE("patterns match and expand") {
  int l = -1, e = -1;
  CHECK(match_pattern("model.layers.{L}.mlp.experts.{E}.up_proj.weight", "model.layers.12.mlp.experts.7.up_proj.weight", &l, &e));
  CHECK(l == 12);
  CHECK(e == 7);
  CHECK_FALSE(match_pattern("model.layers.{L}.mlp.up_proj.weight", "model.layers.x.mlp.up_proj.weight", &l, &e));
  CHECK_FALSE(match_pattern("model.layers.{L}.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight", &l, &e));
  CHECK_FALSE(match_pattern("model.layers.{L}.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weightX", &l, &e));
  CHECK(expand("model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight", 3, 5) == "model.layers.3.block_sparse_moe.experts.5.w1.weight");
}

TEST_CASE("config resolution: defaults, errors, MoE layer rules") {
  nlohmann::json cfg = {{"model_type", "mixtral"}, {"num_hidden_layers", 2}, {"hidden_size", 8}, {"vocab_size", 10},
                        {"num_attention_heads", 2}, {"num_local_experts", 4}, {"num_experts_per_tok", 2}, {"intermediate_size", 6}};
  ModelConfig c = resolve_config(cfg, "c.json");
  CHECK(c.rms_norm_eps == 1e-5);  // MixtralConfig default
  CHECK(c.rope_theta == 1e6);
  CHECK(c.renormalize);
  cfg["num_experts_per_tok"] = 5;
  CHECK_THROWS_WITH(resolve_config(cfg, "c.json"), doctest::Contains("num_experts_per_tok 5 must be in [1, 4]"));
  cfg.erase("hidden_size");
  CHECK_THROWS_WITH(resolve_config(cfg, "c.json"), doctest::Contains("c.json: missing \"hidden_size\""));
  CHECK_THROWS_WITH(resolve_config({{"model_type", "gpt2"}}, "c.json"), doctest::Contains("unsupported architecture"));
  nlohmann::json q = {{"model_type", "qwen2_moe"}, {"num_hidden_layers", 4}, {"hidden_size", 8}, {"vocab_size", 10},
                      {"num_attention_heads", 2}, {"num_experts", 4}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 6},
                      {"decoder_sparse_step", 2}, {"mlp_only_layers", {3}}};
  ModelConfig qc = resolve_config(q, "q.json");
  CHECK(qc.moe_layer == std::vector<bool>{false, true, false, false});
}

TEST_CASE("inspect warns about missing, extra and mis-shaped tensors") {
  // A config claiming 4 layers for the 3-layer tiny llama: layer 3 tensors are missing.
  test::ScratchDir dir("warn");
  std::filesystem::create_directories(dir / "m");
  std::filesystem::copy_file(test::fixture("models/tiny-llama/model.safetensors"), dir / "m/model.safetensors");
  auto cfg = nlohmann::json::parse(test::read_text(test::fixture("models/tiny-llama/config.json")));
  cfg["num_hidden_layers"] = 4;
  cfg["intermediate_size"] = 100;
  test::write_bytes(dir / "m/config.json", cfg.dump());
  auto r = inspect_checkpoint(Checkpoint(dir / "m"), {});
  std::string all = r["warnings"].dump();
  CHECK(all.find("missing tensor model.layers.3.self_attn.q_proj.weight") != std::string::npos);
  CHECK(all.find("config.json implies [100, 64]") != std::string::npos);
}
