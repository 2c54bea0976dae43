// End to end with llama.cpp as the oracle: every family's GGUF, written by moeforge in every
// dtype, loads in llama.cpp and gives the NLL moeforge's own forward pass gives (on the original
// checkpoint: the stated tolerances; on the GGUF it wrote: tighter), and an independent parser
// reads the metadata with llama.cpp's key types.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/sharded_writer.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/e2e/oracle.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }

// tiny-olmoe with its 2 KV heads repeated for the 4 query heads (llama.cpp's olmoe loads only
// num_key_value_heads == num_attention_heads). The full-width k norm sees every element twice, so
// its mean square — and the model's output — is unchanged.
fs::path olmoe_without_gqa(const fs::path& dir) {
  static Checkpoint src(models("tiny-olmoe"));
  Plan p;
  p.config = src.config();
  p.config["num_key_value_heads"] = 4;
  const int64_t hd = 16;
  for (const TensorInfo* t : src.tensors()) {
    bool kv = t->name.find("k_proj") != std::string::npos || t->name.find("v_proj") != std::string::npos;
    bool knorm = t->name.find("k_norm") != std::string::npos;
    if (!kv && !knorm) {
      p.tensors.push_back(copy_tensor(*t, t->name, t->dtype));
      continue;
    }
    OutputTensor o;
    o.name = t->name;
    o.shape = t->shape;
    o.shape[0] *= 2;
    o.whole = true;
    o.produce = [t, hd](int64_t, int64_t, std::byte* out) {
      std::vector<float> in = read_f32(*t);
      auto* f = reinterpret_cast<float*>(out);
      int64_t cols = t->shape.size() > 1 ? t->shape[1] : 1;
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t r = 0; r < hd * cols; ++r) f[h * hd * cols + r] = in[static_cast<size_t>((h / 2) * hd * cols + r)];
    };
    p.tensors.push_back(std::move(o));
  }
  WriteOptions w;
  write_checkpoint(p, dir, w);
  return dir;
}

struct Family {
  const char* name;
  std::string model;
  int window;  // Mistral: within its sliding window of 8 (llama.cpp attends to everything)
};

}  // namespace

TEST_CASE("gguf oracle: every family in f32, f16, bf16 and q8_0 runs in llama.cpp with moeforge's NLL") {
  ScratchDir dir("gguf-oracle");
  std::vector<Family> families = {
      {"llama", models("tiny-llama"), 48},          {"mistral", models("tiny-mistral"), 8},
      {"qwen2", models("tiny-qwen2"), 48},          {"qwen3", models("tiny-qwen3"), 48},
      {"mixtral", models("tiny-mixtral"), 48},      {"qwen2_moe", models("tiny-qwen2-moe"), 48},
      {"qwen3_moe", models("tiny-qwen3-moe"), 48},  {"olmoe", olmoe_without_gqa(dir / "olmoe-mha").string(), 48},
  };
  const std::map<std::string, double> tolerance = {{"f32", 1e-3}, {"f16", 5e-3}, {"bf16", 5e-3}, {"q8_0", 2e-2}};
  nlohmann::json observed;
  for (const auto& f : families) {
    CAPTURE(f.name);
    Windows windows = byte_windows("en", f.window == 8 ? 24 : 8, f.window);
    fs::path ids = write_windows_jsonl(windows, dir / (std::string(f.name) + ".jsonl"));
    double reference = moeforge_nll(f.model, ids);
    std::vector<fs::path> files;
    for (const auto& [dtype, tol] : tolerance) {
      files.push_back(dir / (std::string(f.name) + "-" + dtype + ".gguf"));
      auto r = run_moeforge({"convert", f.model, files.back().string(), "--dtype", dtype, "--quiet"});
      REQUIRE_MESSAGE(r.status == 0, r.err);
    }
    std::vector<double> oracle = llama_cpp_nll(files, windows);
    size_t i = 0;
    for (const auto& [dtype, tol] : tolerance) {
      CAPTURE(dtype);
      double own = moeforge_nll(files[i].string(), ids);  // moeforge reading the GGUF it wrote
      double vs_original = std::fabs(oracle[i] - reference), vs_gguf = std::fabs(oracle[i] - own);
      observed[f.name][dtype] = {{"llama.cpp", oracle[i]}, {"vs original", vs_original}, {"vs gguf", vs_gguf}};
      CHECK(vs_original <= tol);
      // Same weights on both sides: float32 agrees to rounding; for f16, bf16 and q8_0 llama.cpp also
      // rounds the activations it multiplies them with, so only the stated tolerance applies.
      CHECK(vs_gguf <= (dtype == "f32" ? 1e-5 : tol));
      ++i;
    }
  }
  MESSAGE("NLL agreement (mean NLL per prediction, nats): " << observed.dump());
}

TEST_CASE("gguf oracle: a real trained model (stories260k, vocab 512 without tokenizer files) in f32") {
  ScratchDir dir("gguf-stories");
  Windows windows = byte_windows("en", 8, 48);
  fs::path ids = write_windows_jsonl(windows, dir / "ids.jsonl");
  fs::path out = dir / "stories.gguf";
  auto r = run_moeforge({"convert", models("stories260k"), out.string(), "--quiet"});
  REQUIRE(r.status == 0);
  double oracle = llama_cpp_nll({out}, windows)[0];
  CHECK(std::fabs(oracle - moeforge_nll(models("stories260k"), ids)) <= 1e-4);
  CHECK(std::fabs(oracle - moeforge_nll(out.string(), ids)) <= 1e-4);
}

TEST_CASE("gguf oracle: metadata types and tensor infos as an independent parser reads them") {
  ScratchDir dir("gguf-inspect");
  fs::path out = dir / "mixtral.gguf";
  auto r = run_moeforge({"convert", models("tiny-mixtral"), out.string(), "--dtype", "q8_0"});
  REQUIRE(r.status == 0);
  auto j = gguf_inspect(out);
  CHECK(j["version"] == 3);
  const auto& kv = j["kv"];
  CHECK(kv["general.architecture"]["value"] == "llama");
  CHECK(kv["general.file_type"]["type"] == "UINT32");
  CHECK(kv["general.file_type"]["value"] == 7);
  CHECK(kv["llama.expert_count"]["type"] == "UINT32");
  CHECK(kv["llama.expert_count"]["value"] == 8);
  CHECK(kv["llama.attention.layer_norm_rms_epsilon"]["type"] == "FLOAT32");
  CHECK(kv["tokenizer.ggml.tokens"]["elem_type"] == "STRING");
  CHECK(kv["tokenizer.ggml.token_type"]["elem_type"] == "INT32");
  std::map<std::string, nlohmann::json> tensors;
  for (const auto& t : j["tensors"]) tensors[t["name"]] = t;
  CHECK(tensors.size() == 33);
  CHECK(tensors["blk.0.ffn_gate_exps.weight"]["ne"] == nlohmann::json({64, 96, 8}));
  CHECK(tensors["blk.0.ffn_gate_exps.weight"]["type"] == "Q8_0");
  CHECK(tensors["blk.0.ffn_down_exps.weight"]["ne"] == nlohmann::json({96, 64, 8}));
  CHECK(tensors["blk.0.ffn_gate_inp.weight"]["type"] == "F32");
  CHECK(tensors["blk.2.attn_norm.weight"]["type"] == "F32");
}

TEST_CASE("gguf oracle: q4_0, q4_k, q5_k and q6_k run in llama.cpp (a 256-wide mixtral)") {
  ScratchDir dir("gguf-kquants");
  auto r = run_program(MOEFORGE_MAKE_MODEL, {"--family", "mixtral", "--hidden", "256", "--intermediate", "512", "--layers", "2", "--vocab", "256",
                                             "--heads", "4", "--kv-heads", "2", "--experts", "4", "--top-k", "2", "--dtype", "f32", "--seed", "3",
                                             (dir / "m").string()});
  REQUIRE(r.status == 0);
  Windows windows = byte_windows("de", 6, 48);
  fs::path ids = write_windows_jsonl(windows, dir / "ids.jsonl");
  std::vector<std::string> types = {"q4_0", "q4_k", "q5_k", "q6_k"};
  std::vector<fs::path> files;
  for (const auto& t : types) {
    files.push_back(dir / (t + ".gguf"));
    auto w = run_moeforge({"convert", (dir / "m").string(), files.back().string(), "--dtype", t, "--quiet"});
    REQUIRE_MESSAGE(w.status == 0, w.err);
  }
  double original = moeforge_nll((dir / "m").string(), ids);
  auto oracle = llama_cpp_nll(files, windows);
  nlohmann::json observed;
  for (size_t i = 0; i < types.size(); ++i) {
    CAPTURE(types[i]);
    double own = moeforge_nll(files[i].string(), ids);  // moeforge decoding the same blocks
    observed[types[i]] = {{"llama.cpp", oracle[i]}, {"vs gguf", std::fabs(oracle[i] - own)}, {"vs original", std::fabs(oracle[i] - original)}};
    CHECK(std::fabs(oracle[i] - own) <= 2e-2);
  }
  MESSAGE("K-quants, NLL agreement: " << observed.dump());
}
