// End to end: the families of tests/reference/families written as GGUF (glm4_moe → glm4moe,
// gpt_oss → gpt-oss) run in llama.cpp and reproduce the golden (Hugging Face) logits; pruned
// ones agree with moeforge's own evaluation of the same pruned checkpoint.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/ggml_quants.hpp"
#include "formats/gguf.hpp"
#include "formats/safetensors.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/e2e/oracle.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

// A reference model's golden inputs and logits ([window][position][token], flattened). A model
// without its own golden.safetensors names the model it shares it with ("golden_from").
struct Golden {
  Windows windows;
  std::vector<float> logits;
  size_t vocab = 0;
  const float* at(size_t w, size_t i) const { return &logits[(w * windows[0].size() + i) * vocab]; }
};

Golden read_golden(const std::string& model) {
  fs::path dir = family_model(model);
  if (!fs::exists(dir / "golden.safetensors")) {
    auto meta = nlohmann::json::parse(read_text(dir / "golden.json"));
    dir = family_model(meta.at("golden_from").get<std::string>());
  }
  SafetensorsFile file(dir / "golden.safetensors");
  Golden g;
  for (const auto& t : file.tensors()) {
    if (t.name == "logits") {
      g.logits = read_f32(t);
      g.vocab = static_cast<size_t>(t.shape.back());
    }
    if (t.name == "input_ids") {
      std::vector<double> ids = read_f64(t);
      size_t len = static_cast<size_t>(t.shape.back());
      for (size_t a = 0; a < ids.size(); a += len) g.windows.emplace_back(ids.begin() + static_cast<long>(a), ids.begin() + static_cast<long>(a + len));
    }
  }
  REQUIRE(!g.windows.empty());
  REQUIRE(g.logits.size() == g.windows.size() * g.windows[0].size() * g.vocab);
  return g;
}

// Mean NLL of the next tokens of the windows under logits given per (window, position).
template <typename Logits>
double mean_nll(const Windows& windows, size_t vocab, Logits logits) {
  double total = 0;
  size_t count = 0;
  for (size_t w = 0; w < windows.size(); ++w)
    for (size_t i = 0; i + 1 < windows[w].size(); ++i) {
      const float* l = logits(w, i);
      double mx = *std::max_element(l, l + vocab), sum = 0;
      for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(l[v]) - mx);
      total += -(l[windows[w][i + 1]] - mx - std::log(sum));
      ++count;
    }
  return total / static_cast<double>(count);
}

struct Agreement {
  double max_abs = 0, nll_diff = 0;
};

// llama.cpp on the GGUF against the golden logits: largest logit difference and NLL difference.
Agreement golden_agreement(const Golden& g, const fs::path& gguf, const std::string& tag) {
  auto ll = llama_cpp_logits(gguf, g.windows);
  REQUIRE(ll.size() == g.windows.size());
  Agreement a;
  for (size_t w = 0; w < ll.size(); ++w) {
    REQUIRE(ll[w].size() == g.windows[w].size());
    for (size_t i = 0; i < ll[w].size(); ++i) {
      REQUIRE(ll[w][i].size() == g.vocab);
      for (size_t v = 0; v < g.vocab; ++v) a.max_abs = std::max(a.max_abs, std::fabs(static_cast<double>(ll[w][i][v] - g.at(w, i)[v])));
    }
  }
  double golden = mean_nll(g.windows, g.vocab, [&](size_t w, size_t i) { return g.at(w, i); });
  double oracle = mean_nll(g.windows, g.vocab, [&](size_t w, size_t i) { return ll[w][i].data(); });
  a.nll_diff = oracle - golden;
  MESSAGE(tag << ": llama.cpp vs golden: max |logit diff| " << a.max_abs << ", NLL " << oracle << " vs " << golden << " (diff " << a.nll_diff << ")");
  return a;
}

// The model converted with each --dtype: f32 reproduces the logits, the others the NLL within
// the issue's tolerances (f16/bf16 5e-3, q8_0 2e-2).
void check_dtypes(const std::string& model, const std::vector<std::string>& dtypes, const ScratchDir& dir) {
  Golden g = read_golden(model);
  for (const auto& dtype : dtypes) {
    fs::path out = dir / (model + "-" + dtype + ".gguf");
    run_ok({"convert", family_model(model).string(), out.string(), "--dtype", dtype, "--quiet"});
    Agreement a = golden_agreement(g, out, model + " " + dtype);
    if (dtype == "f32") {
      CHECK(a.max_abs <= 1e-4);
      CHECK(std::fabs(a.nll_diff) <= 1e-3);
    } else {
      CHECK(std::fabs(a.nll_diff) <= (dtype == "q8_0" ? 2e-2 : 5e-3));
    }
  }
}

}  // namespace

TEST_CASE("gguf families: glm4_moe as glm4moe reproduces the golden logits in llama.cpp") {
  ScratchDir dir("gguf-glm4moe");
  check_dtypes("tiny-glm4-moe", {"f32", "f16", "bf16", "q8_0"}, dir);
  check_dtypes("tiny-glm4-moe-noqknorm", {"f32"}, dir);
  GgufFile f = read_gguf(dir / "tiny-glm4-moe-f32.gguf");
  auto cfg = nlohmann::json::parse(read_text(family_model("tiny-glm4-moe") / "config.json"));
  CHECK(f.find_value("glm4moe.expert_shared_count")->get<int>() == cfg["n_shared_experts"].get<int>());
  CHECK(f.find_value("glm4moe.leading_dense_block_count")->get<int>() == cfg["first_k_dense_replace"].get<int>());
  CHECK(f.find_value("glm4moe.rope.dimension_count")->get<int>() ==
        static_cast<int>(cfg["head_dim"].get<int>() * cfg["partial_rotary_factor"].get<double>()));
  CHECK(f.find_value("glm4moe.block_count")->get<int>() == cfg["num_hidden_layers"].get<int>());  // no MTP layers
}

TEST_CASE("gguf families: glm4_moe multi-token-prediction layers are left out with a warning") {
  ScratchDir dir("gguf-glm4moe-mtp");
  fs::path model = dir / "with-mtp";
  fs::create_directories(model);
  fs::copy_file(family_model("tiny-glm4-moe") / "config.json", model / "config.json");
  // GLM-4.5 checkpoints carry their MTP layer as model.layers.{num_hidden_layers}.*: one such
  // tensor is appended to a copy of the model file.
  std::string bytes = read_text(family_model("tiny-glm4-moe") / "model.safetensors");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[static_cast<size_t>(i)])) << (8 * i);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  const uint64_t end = bytes.size() - 8 - n;
  header["model.layers.2.enorm.weight"] = {{"dtype", "F32"}, {"shape", {64}}, {"data_offsets", {end, end + 256}}};
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  write_bytes(model / "model.safetensors", file + h + bytes.substr(8 + n) + std::string(256, '\0'));
  auto r = run_moeforge({"convert", model.string(), (dir / "out.gguf").string()});
  REQUIRE(r.status == 0);
  CHECK(r.err.find("multi-token-prediction layers (model.layers.2 and above) are not written") != std::string::npos);
  CHECK(read_gguf(dir / "out.gguf").find_value("glm4moe.block_count")->get<int>() == 2);
  Agreement a = golden_agreement(read_golden("tiny-glm4-moe"), dir / "out.gguf", "tiny-glm4-moe with an MTP tensor");
  CHECK(a.max_abs <= 1e-4);
}

TEST_CASE("gguf families: a pruned glm4_moe GGUF runs in llama.cpp as moeforge evaluates it") {
  ScratchDir dir("gguf-glm4moe-prune");
  write_bytes(dir / "keep.json", R"({"1": [6, 1, 3, 4]})");
  check_gguf_matches_safetensors({"prune", family_model("tiny-glm4-moe").string(), "--keep-list", (dir / "keep.json").string(), "--quiet"}, dir.path(),
                                 "glm4moe-pruned", "en", 4, 48);
  GgufFile f = read_gguf(dir / "glm4moe-pruned.gguf");
  CHECK(f.find_value("glm4moe.expert_count")->get<int>() == 4);
}

namespace {

// A copy of a reference model with rope_scaling.truncate set to true: llama.cpp always rounds
// YaRN's correction range, so only then are its logits those of the same model in transformers.
fs::path truncated_copy(const ScratchDir& dir, const std::string& model) {
  fs::path out = dir / (model + "-truncate");
  fs::create_directories(out);
  fs::copy_file(family_model(model) / "model.safetensors", out / "model.safetensors");
  auto cfg = nlohmann::json::parse(read_text(family_model(model) / "config.json"));
  cfg["rope_scaling"]["truncate"] = true;
  write_bytes(out / "config.json", cfg.dump(2));
  return out;
}

std::vector<float> gguf_tensor_f32(const fs::path& file, const std::string& name) {
  GgufFile g = read_gguf(file);
  for (const auto& t : g.tensors)
    if (t.name == name) {
      std::string bytes = read_text(file);
      std::vector<float> out(t.numel());
      decode_ggml(static_cast<GgmlType>(t.type), reinterpret_cast<const std::byte*>(bytes.data() + g.data_start + t.offset),
                  static_cast<int64_t>(out.size()), out.data());
      return out;
    }
  FAIL("no tensor " << name << " in " << file);
  return {};
}

}  // namespace

TEST_CASE("gguf families: gpt_oss as gpt-oss reproduces the golden logits in llama.cpp") {
  ScratchDir dir("gguf-gpt-oss");
  // transformers' gpt-oss YaRN does not round its correction range (truncate false), llama.cpp's
  // does: positions past 0 differ by a few 1e-3 in the logits, the NLL by far less.
  Golden g = read_golden("tiny-gpt-oss");
  for (const std::string dtype : {"f32", "f16", "bf16", "q8_0"}) {
    fs::path out = dir / ("gpt-oss-" + dtype + ".gguf");
    run_ok({"convert", family_model("tiny-gpt-oss").string(), out.string(), "--dtype", dtype, "--quiet"});
    Agreement a = golden_agreement(g, out, "tiny-gpt-oss " + dtype);
    CHECK(std::fabs(a.nll_diff) <= (dtype == "f32" ? 1e-3 : dtype == "q8_0" ? 2e-2 : 5e-3));
    if (dtype == "f32") CHECK(a.max_abs <= 1e-2);
  }
  // With the rounding llama.cpp does, llama.cpp and moeforge agree on the same weights.
  Windows windows = byte_windows("en", 4, 48);
  fs::path ids = write_windows_jsonl(windows, dir / "en.jsonl");
  fs::path truncated = truncated_copy(dir, "tiny-gpt-oss");
  run_ok({"convert", truncated.string(), (dir / "truncated.gguf").string(), "--quiet"});
  double oracle = llama_cpp_nll({dir / "truncated.gguf"}, windows)[0], own = moeforge_nll(truncated.string(), ids);
  MESSAGE("gpt-oss, truncate true: llama.cpp " << oracle << ", moeforge " << own);
  CHECK(std::fabs(oracle - own) <= 1e-4);
}

TEST_CASE("gguf families: gpt_oss MXFP4 experts are repacked into ggml MXFP4 blocks that llama.cpp runs") {
  ScratchDir dir("gguf-gpt-oss-mxfp4");
  fs::path mx = dir / "mxfp4.gguf", plain = dir / "plain.gguf";
  run_ok({"convert", family_model("tiny-gpt-oss-mxfp4").string(), mx.string(), "--dtype", "f16", "--quiet"});
  run_ok({"convert", family_model("tiny-gpt-oss").string(), plain.string(), "--dtype", "f32", "--quiet"});
  GgufFile f = read_gguf(mx);
  CHECK(f.find_value("general.file_type")->get<int>() == 38);  // MOSTLY_MXFP4_MOE
  int mxfp4_tensors = 0;
  for (const auto& t : f.tensors) mxfp4_tensors += t.type == static_cast<uint32_t>(GgmlType::kMXFP4);
  CHECK(mxfp4_tensors == 6);  // gate, up, down of both layers, whatever --dtype says
  // The sibling models hold the same (MXFP4-exact) expert weights: the repacked blocks decode to
  // exactly the float GGUF's de-interleaved, transposed experts.
  for (const char* name : {"blk.0.ffn_gate_exps.weight", "blk.1.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight"}) {
    CAPTURE(name);
    CHECK(gguf_tensor_f32(mx, name) == gguf_tensor_f32(plain, name));
  }
  // llama.cpp multiplies MXFP4 weights with activations rounded to q8_0: NLL as for q8_0.
  Agreement a = golden_agreement(read_golden("tiny-gpt-oss-mxfp4"), mx, "tiny-gpt-oss-mxfp4");
  CHECK(std::fabs(a.nll_diff) <= 2e-2);
}

TEST_CASE("gguf families: a pruned gpt-oss GGUF (float or MXFP4 experts) runs in llama.cpp") {
  ScratchDir dir("gguf-gpt-oss-prune");
  write_bytes(dir / "keep.json", R"({"0": [3, 0, 2], "1": [1, 2, 3]})");
  fs::path truncated = truncated_copy(dir, "tiny-gpt-oss");
  check_gguf_matches_safetensors({"prune", truncated.string(), "--keep-list", (dir / "keep.json").string(), "--quiet"}, dir.path(), "gpt-oss-pruned", "en", 4, 48);
  CHECK(read_gguf(dir / "gpt-oss-pruned.gguf").find_value("gpt-oss.expert_count")->get<int>() == 3);
  // Pruning the MXFP4 sibling copies the kept experts' blocks: the same weights as the float prune.
  run_ok({"prune", family_model("tiny-gpt-oss-mxfp4").string(), (dir / "mx-pruned.gguf").string(), "--keep-list", (dir / "keep.json").string(),
          "--quiet"});
  run_ok({"convert", (dir / "gpt-oss-pruned").string(), (dir / "plain-pruned.gguf").string(), "--dtype", "f32", "--quiet"});
  for (const std::string part : {"gate", "up", "down"})
    for (const std::string layer : {"0", "1"}) {
      std::string name = "blk." + layer + ".ffn_" + part + "_exps.weight";
      CAPTURE(name);
      CHECK(gguf_tensor_f32(dir / "mx-pruned.gguf", name) == gguf_tensor_f32(dir / "plain-pruned.gguf", name));
    }
  // llama.cpp rounds the activations to q8_0 for MXFP4 weights (and a routing choice may flip):
  // per-window NLLs move by up to ~2e-2 on this tiny model, so only a loose agreement is asked.
  Windows windows = byte_windows("en", 4, 48);
  double mx = llama_cpp_nll({dir / "mx-pruned.gguf"}, windows)[0], plain = llama_cpp_nll({dir / "plain-pruned.gguf"}, windows)[0];
  MESSAGE("pruned gpt-oss: llama.cpp MXFP4 " << mx << ", f32 " << plain);
  CHECK(std::fabs(mx - plain) <= 5e-2);
}

TEST_CASE("gguf families: gpt_oss layouts llama.cpp cannot run are refused with one line, nothing written") {
  ScratchDir dir("gguf-gpt-oss-refused");
  fs::path model = dir / "swapped";
  fs::create_directories(model);
  fs::copy_file(family_model("tiny-gpt-oss") / "model.safetensors", model / "model.safetensors");
  auto cfg = nlohmann::json::parse(read_text(family_model("tiny-gpt-oss") / "config.json"));
  cfg["layer_types"] = {"full_attention", "sliding_attention"};
  write_bytes(model / "config.json", cfg.dump(2));
  auto r = run_moeforge({"convert", model.string(), (dir / "out.gguf").string()});
  CHECK(r.status != 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("even layers only, but layer 0 attends to the whole context") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out.gguf"));
}

namespace {

// Every tensor's bytes, by name.
std::map<std::string, std::string> gguf_tensor_bytes(const fs::path& file) {
  GgufFile g = read_gguf(file);
  std::string bytes = read_text(file);
  std::map<std::string, std::string> out;
  for (const auto& t : g.tensors) out[t.name] = bytes.substr(g.data_start + t.offset, t.nbytes);
  return out;
}

}  // namespace

TEST_CASE("gguf families: a glm4moe GGUF reads back as its checkpoint; pruning its q8_0 file copies the kept blocks") {
  ScratchDir dir("gguf-glm4moe-read");
  const std::string hf = family_model("tiny-glm4-moe").string();
  run_ok({"convert", hf, (dir / "f32.gguf").string(), "--quiet"});
  run_ok({"convert", (dir / "f32.gguf").string(), (dir / "back").string(), "--quiet"});
  auto d = run_moeforge({"diff", hf, (dir / "back").string()});
  CHECK(d.out.find("0 differ (atol 0, largest abs difference 0), 0 only in A, 0 only in B") != std::string::npos);
  auto cfg = nlohmann::json::parse(read_text(dir / "back" / "config.json")), want = nlohmann::json::parse(read_text(fs::path(hf) / "config.json"));
  for (const char* key : {"n_routed_experts", "n_shared_experts", "first_k_dense_replace", "n_group", "topk_group", "norm_topk_prob",
                          "routed_scaling_factor", "partial_rotary_factor", "attention_bias", "use_qk_norm", "moe_intermediate_size"}) {
    CAPTURE(key);
    CHECK(cfg[key] == want[key]);
  }
  // Pruning the quantised GGUF gives the bytes of quantising the pruned checkpoint, and llama.cpp runs it.
  write_bytes(dir / "keep.json", R"({"1": [6, 1, 3, 4]})");
  run_ok({"convert", hf, (dir / "q8.gguf").string(), "--dtype", "q8_0", "--quiet"});
  run_ok({"prune", (dir / "q8.gguf").string(), (dir / "q8-pruned.gguf").string(), "--keep-list", (dir / "keep.json").string(), "--quiet"});
  run_ok({"prune", hf, (dir / "pruned").string(), "--keep-list", (dir / "keep.json").string(), "--quiet"});
  run_ok({"convert", (dir / "pruned").string(), (dir / "pruned-q8.gguf").string(), "--dtype", "q8_0", "--quiet"});
  auto a = gguf_tensor_bytes(dir / "q8-pruned.gguf"), b = gguf_tensor_bytes(dir / "pruned-q8.gguf");
  CHECK(a.size() == b.size());
  for (const auto& [name, bytes] : a) {
    CAPTURE(name);
    CHECK((b.count(name) && b[name] == bytes));
  }
  Windows windows = byte_windows("en", 2, 48);
  auto nll = llama_cpp_nll({dir / "q8-pruned.gguf", dir / "pruned-q8.gguf"}, windows);
  CHECK(nll[0] == nll[1]);
}
