// Writes a random-weight checkpoint of a given family and size, for benchmarks. Values are a
// seeded function of (tensor name, row), so any chunking gives the same bytes.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <functional>

#include "core/strings.hpp"
#include "formats/sharded_writer.hpp"
#include "model/model_config.hpp"

using namespace moeforge;

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"write a random-weight checkpoint for benchmarks"};
  std::string family = "llama", out, dtype_name = "bf16", shard = "5GB";
  int64_t hidden = 1024, inter = 2816, layers = 8, vocab = 32000, heads = 16, kv_heads = 8, experts = 8, top_k = 2;
  uint64_t seed = 0;
  app.add_option("--family", family, "llama or mixtral");
  app.add_option("--hidden", hidden);
  app.add_option("--intermediate", inter);
  app.add_option("--layers", layers);
  app.add_option("--vocab", vocab);
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--experts", experts);
  app.add_option("--top-k", top_k);
  app.add_option("--dtype", dtype_name);
  app.add_option("--seed", seed);
  app.add_option("--max-shard-size", shard);
  app.add_option("out", out)->required();
  CLI11_PARSE(app, argc, argv);

  nlohmann::json cfg = {{"model_type", family}, {"hidden_size", hidden}, {"intermediate_size", inter},
                        {"num_hidden_layers", layers}, {"vocab_size", vocab}, {"num_attention_heads", heads},
                        {"num_key_value_heads", kv_heads}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
                        {"max_position_embeddings", 4096}, {"tie_word_embeddings", false}, {"hidden_act", "silu"}};
  if (family == "llama") cfg["architectures"] = {"LlamaForCausalLM"};
  if (family == "mixtral") {
    cfg["architectures"] = {"MixtralForCausalLM"};
    cfg["num_local_experts"] = experts;
    cfg["num_experts_per_tok"] = top_k;
  }
  DType dtype = *find_output_dtype(dtype_name);
  cfg["torch_dtype"] = std::string(dtype_info(dtype).torch_name);
  ModelConfig c = resolve_config(cfg, "generated");
  Plan plan;
  plan.config = cfg;
  for (const auto& e : expected_tensors(c)) {
    Shape shape;
    Role role = e.pattern->role;
    int64_t width = role == Role::kExpert ? c.expert_intermediate : c.intermediate;
    int64_t q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
    bool norm = role == Role::kFinalNorm || role == Role::kAttnNorm || role == Role::kFfnNorm;
    if (role == Role::kEmbedding || role == Role::kLmHead) shape = {c.vocab, c.hidden};
    else if (norm) shape = {c.hidden};
    else if (role == Role::kRouter) shape = {c.n_experts, c.hidden};
    else if (e.pattern->proj == Proj::kDown) shape = {c.hidden, width};
    else if (e.pattern->proj != Proj::kNone) shape = {width, c.hidden};
    else if (e.name.find("q_proj") != std::string::npos) shape = {q, c.hidden};
    else if (e.name.find("o_proj") != std::string::npos) shape = {c.hidden, q};
    else shape = {kv, c.hidden};
    float scale = 0.02f * std::sqrt(3.0f);
    plan.tensors.push_back(random_tensor(e.name, shape, dtype, scale, norm, seed));
  }
  WriteOptions o;
  o.max_shard_size = parse_size(shard);
  o.force = true;
  auto r = write_checkpoint(plan, out, o);
  std::printf("%s: %zu tensors, %llu bytes, %.1f s\n", out.c_str(), plan.tensors.size(),
              static_cast<unsigned long long>(r.tensor_bytes), r.seconds);
  return 0;
}
