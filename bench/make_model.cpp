// Writes a random-weight checkpoint of a given family and size, for benchmarks. Values are a
// seeded function of (tensor name, row), so any chunking gives the same bytes. Families: llama,
// mixtral, and deepseek_v3 (MLA attention, group-limited sigmoid routing, shared experts).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "core/strings.hpp"
#include "formats/sharded_writer.hpp"
#include "model/model_config.hpp"

using namespace moeforge;

namespace {

struct Options {
  std::string family = "llama", out, dtype_name = "bf16", shard = "5GB";
  int64_t hidden = 1024, inter = 2816, layers = 8, vocab = 32000, heads = 16, kv_heads = 8, experts = 8, top_k = 2;
  // deepseek_v3 only
  int64_t moe_inter = 512, shared_experts = 1, first_dense = 1, n_group = 4, topk_group = 2;
  int64_t q_lora_rank = 384, kv_lora_rank = 256, qk_nope = 64, qk_rope = 32, v_head = 64;
  double routed_scaling = 2.5, yarn_factor = 0;
  uint64_t seed = 0;
};

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

OutputTensor random_tensor(const std::string& name, Shape shape, DType dtype, float scale, bool is_norm, uint64_t seed) {
  OutputTensor t;
  t.name = name;
  t.shape = shape;
  t.dtype = dtype;
  t.source = "random";
  uint64_t base = mix(std::hash<std::string>{}(name) ^ seed);
  int64_t cols = shape.size() < 2 ? shape_numel(shape) : shape_numel(shape) / shape[0];
  t.produce = [=](int64_t r0, int64_t r1, std::byte* out) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      uint64_t s = mix(base + static_cast<uint64_t>(r));
      for (auto& v : row) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        float u = static_cast<float>(s >> 40) / 16777216.0f * 2.0f - 1.0f;  // uniform in [-1, 1)
        v = is_norm ? 1.0f + 0.1f * u : scale * u;
      }
      from_f32(dtype, row.data(), row.size(), out + (r - r0) * cols * dtype_size(dtype));
    }
  };
  return t;
}

nlohmann::json llama_config(const Options& o) {
  nlohmann::json cfg = {{"model_type", o.family}, {"hidden_size", o.hidden}, {"intermediate_size", o.inter},
                        {"num_hidden_layers", o.layers}, {"vocab_size", o.vocab}, {"num_attention_heads", o.heads},
                        {"num_key_value_heads", o.kv_heads}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
                        {"max_position_embeddings", 4096}, {"tie_word_embeddings", false}, {"hidden_act", "silu"}};
  if (o.family == "llama") cfg["architectures"] = {"LlamaForCausalLM"};
  if (o.family == "mixtral") {
    cfg["architectures"] = {"MixtralForCausalLM"};
    cfg["num_local_experts"] = o.experts;
    cfg["num_experts_per_tok"] = o.top_k;
  }
  return cfg;
}

// The key set of transformers' DeepseekV3Config as save_pretrained writes it (head_dim is the
// rope part, qk_head_dim nope + rope). YaRN is on only with --yarn-factor.
nlohmann::json deepseek_config(const Options& o) {
  nlohmann::json rope_scaling = nullptr;
  if (o.yarn_factor > 0)
    rope_scaling = {{"type", "yarn"}, {"rope_type", "yarn"}, {"factor", o.yarn_factor}, {"beta_fast", 32.0}, {"beta_slow", 1.0},
                    {"mscale", 1.0}, {"mscale_all_dim", 1.0}, {"original_max_position_embeddings", 4096}};
  return {{"architectures", {"DeepseekV3ForCausalLM"}}, {"attention_bias", false}, {"attention_dropout", 0.0},
          {"bos_token_id", 0}, {"eos_token_id", 1}, {"first_k_dense_replace", o.first_dense}, {"head_dim", o.qk_rope},
          {"hidden_act", "silu"}, {"hidden_size", o.hidden}, {"initializer_range", 0.02}, {"intermediate_size", o.inter},
          {"kv_lora_rank", o.kv_lora_rank}, {"max_position_embeddings", static_cast<int64_t>(4096 * std::max(1.0, o.yarn_factor))},
          {"model_type", "deepseek_v3"}, {"moe_intermediate_size", o.moe_inter}, {"n_group", o.n_group},
          {"n_routed_experts", o.experts}, {"n_shared_experts", o.shared_experts}, {"norm_topk_prob", true},
          {"num_attention_heads", o.heads}, {"num_experts_per_tok", o.top_k}, {"num_hidden_layers", o.layers},
          {"num_key_value_heads", o.heads}, {"pretraining_tp", 1},
          {"q_lora_rank", o.q_lora_rank > 0 ? nlohmann::json(o.q_lora_rank) : nlohmann::json(nullptr)},
          {"qk_head_dim", o.qk_nope + o.qk_rope}, {"qk_nope_head_dim", o.qk_nope}, {"qk_rope_head_dim", o.qk_rope},
          {"rms_norm_eps", 1e-6}, {"rope_interleave", true}, {"rope_scaling", rope_scaling}, {"rope_theta", 10000.0},
          {"routed_scaling_factor", o.routed_scaling}, {"tie_word_embeddings", false}, {"topk_group", o.topk_group},
          {"use_cache", true}, {"v_head_dim", o.v_head}, {"vocab_size", o.vocab}};
}

// The shapes of MLA's attention tensors (see engine/mla_attention.hpp), by name.
Shape mla_shape(const ModelConfig& c, const std::string& name) {
  const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  if (name.ends_with("q_proj.weight")) return {c.n_heads * qk, c.hidden};
  if (name.ends_with("q_a_proj.weight")) return {c.q_lora_rank, c.hidden};
  if (name.ends_with("q_a_layernorm.weight")) return {c.q_lora_rank};
  if (name.ends_with("q_b_proj.weight")) return {c.n_heads * qk, c.q_lora_rank};
  if (name.ends_with("kv_a_proj_with_mqa.weight")) return {c.kv_lora_rank + c.qk_rope_head_dim, c.hidden};
  if (name.ends_with("kv_a_layernorm.weight")) return {c.kv_lora_rank};
  if (name.ends_with("kv_b_proj.weight")) return {c.n_heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank};
  if (name.ends_with("o_proj.weight")) return {c.hidden, c.n_heads * c.v_head_dim};
  throw std::runtime_error("no generator shape for " + name);
}

Shape tensor_shape(const ModelConfig& c, const ExpectedTensor& e, bool norm) {
  Role role = e.pattern->role;
  int64_t width = role == Role::kExpert ? c.expert_intermediate : role == Role::kSharedExpert ? c.shared_intermediate : c.intermediate;
  int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  if (c.family->attention == AttentionKind::kMla && e.name.find(".self_attn.") != std::string::npos) return mla_shape(c, e.name);
  if (role == Role::kEmbedding || role == Role::kLmHead) return {c.vocab, c.hidden};
  if (norm) return {c.hidden};
  if (role == Role::kRouter) return {c.n_experts, c.hidden};
  if (role == Role::kRouterBias) return {c.n_experts};
  if (e.pattern->proj == Proj::kDown) return {c.hidden, width};
  if (e.pattern->proj != Proj::kNone) return {width, c.hidden};
  if (e.name.find("q_proj") != std::string::npos) return {q, c.hidden};
  if (e.name.find("o_proj") != std::string::npos) return {c.hidden, q};
  return {kv, c.hidden};
}

void add_options(CLI::App& app, Options& o) {
  app.add_option("--family", o.family, "llama, mixtral or deepseek_v3");
  app.add_option("--hidden", o.hidden);
  app.add_option("--intermediate", o.inter, "dense FFN width (deepseek_v3: of the first dense layers)");
  app.add_option("--layers", o.layers);
  app.add_option("--vocab", o.vocab);
  app.add_option("--heads", o.heads);
  app.add_option("--kv-heads", o.kv_heads);
  app.add_option("--experts", o.experts);
  app.add_option("--top-k", o.top_k);
  app.add_option("--moe-intermediate", o.moe_inter, "deepseek_v3: routed (and per shared) expert width");
  app.add_option("--shared-experts", o.shared_experts);
  app.add_option("--first-dense", o.first_dense, "deepseek_v3: first_k_dense_replace");
  app.add_option("--n-group", o.n_group);
  app.add_option("--topk-group", o.topk_group);
  app.add_option("--q-lora-rank", o.q_lora_rank, "0 = plain q_proj");
  app.add_option("--kv-lora-rank", o.kv_lora_rank);
  app.add_option("--qk-nope-head-dim", o.qk_nope);
  app.add_option("--qk-rope-head-dim", o.qk_rope);
  app.add_option("--v-head-dim", o.v_head);
  app.add_option("--routed-scaling", o.routed_scaling);
  app.add_option("--yarn-factor", o.yarn_factor, "deepseek_v3: YaRN rope scaling factor (0 = off)");
  app.add_option("--dtype", o.dtype_name);
  app.add_option("--seed", o.seed);
  app.add_option("--max-shard-size", o.shard);
  app.add_option("out", o.out)->required();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"write a random-weight checkpoint for benchmarks"};
  Options o;
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);

  nlohmann::json cfg = o.family == "deepseek_v3" ? deepseek_config(o) : llama_config(o);
  DType dtype = *find_output_dtype(o.dtype_name);
  cfg["torch_dtype"] = std::string(dtype_info(dtype).torch_name);
  ModelConfig c = resolve_config(cfg, "generated");
  Plan plan;
  plan.config = cfg;
  for (const auto& e : expected_tensors(c)) {
    Role role = e.pattern->role;
    bool norm = role == Role::kFinalNorm || role == Role::kAttnNorm || role == Role::kFfnNorm || e.name.ends_with("layernorm.weight");
    // The correction bias shifts selection only: a spread like a trained model's, larger than the weights'.
    float scale = role == Role::kRouterBias ? 0.05f : 0.02f * std::sqrt(3.0f);
    plan.tensors.push_back(random_tensor(e.name, tensor_shape(c, e, norm), dtype, scale, norm, o.seed));
  }
  WriteOptions w;
  w.max_shard_size = parse_size(o.shard);
  w.force = true;
  auto r = write_checkpoint(plan, o.out, w);
  std::printf("%s: %zu tensors, %llu bytes, %.1f s\n", o.out.c_str(), plan.tensors.size(),
              static_cast<unsigned long long>(r.tensor_bytes), r.seconds);
  return 0;
}
