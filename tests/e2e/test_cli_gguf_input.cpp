// End to end: GGUF inputs. A quantised GGUF MoE is pruned by copying the kept experts' blocks
// byte for byte (the same bytes as quantising the pruned checkpoint) and still runs in llama.cpp;
// observe/eval read quantised GGUFs; a GGUF round trip reads back the values written; malformed
// GGUF inputs give one clear line and write nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/gguf.hpp"
#include "formats/mapped_file.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/e2e/oracle.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }

// A mixtral-shaped float32 model 256 wide (K-quant blocks are 256 elements), 4 experts, 2 layers.
fs::path mixtral256(const fs::path& dir) {
  auto r = run_program(MOEFORGE_MAKE_MODEL, {"--family", "mixtral", "--hidden", "256", "--intermediate", "512", "--layers", "2", "--vocab", "256",
                                             "--heads", "4", "--kv-heads", "2", "--experts", "4", "--top-k", "2", "--dtype", "f32", "--seed", "7",
                                             dir.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  return dir;
}

struct Stored {
  GgufFile header;
  std::string bytes;
  std::string tensor(const std::string& name) const {
    for (const auto& t : header.tensors)
      if (t.name == name) return bytes.substr(header.data_start + t.offset, t.nbytes);
    FAIL("no tensor " << name);
    return {};
  }
  uint32_t type(const std::string& name) const {
    for (const auto& t : header.tensors)
      if (t.name == name) return t.type;
    return ~0u;
  }
};

Stored stored(const fs::path& file) {
  Stored s{read_gguf(file), read_text(file)};
  return s;
}

}  // namespace

TEST_CASE("gguf input: pruning a Q4_K_M GGUF copies the kept experts' blocks and runs in llama.cpp") {
  ScratchDir dir("gguf-prune");
  fs::path hf = mixtral256(dir / "m");
  fs::path q = dir / "m-q4k.gguf";
  run_ok({"convert", hf.string(), q.string(), "--dtype", "q4_k", "--quiet"});
  write_bytes(dir / "keep.json", R"({"0": [1, 3], "1": [0, 2]})");
  fs::path pruned = dir / "pruned.gguf";
  run_ok({"prune", q.string(), pruned.string(), "--keep-list", (dir / "keep.json").string(), "--quiet"});

  Stored in = stored(q), out = stored(pruned);
  CHECK(out.header.find_value("llama.expert_count")->get<int>() == 2);
  CHECK(out.header.find_value("general.file_type")->get<int>() == 15);
  const std::map<int, std::vector<int>> kept = {{0, {1, 3}}, {1, {0, 2}}};
  for (const auto& [layer, experts] : kept)
    for (const char* proj : {"gate", "up", "down"}) {
      std::string name = "blk." + std::to_string(layer) + ".ffn_" + proj + "_exps.weight";
      CAPTURE(name);
      std::string all = in.tensor(name), want;
      size_t slab = all.size() / 4;
      for (int e : experts) want += all.substr(static_cast<size_t>(e) * slab, slab);
      CHECK(out.type(name) == in.type(name));
      CHECK(out.tensor(name) == want);  // the quantised blocks, byte for byte
    }
  std::string router = in.tensor("blk.0.ffn_gate_inp.weight");
  CHECK(out.tensor("blk.0.ffn_gate_inp.weight") == router.substr(1 * 1024, 1024) + router.substr(3 * 1024, 1024));
  for (const auto& t : in.header.tensors)
    if (t.name.find("_exps") == std::string::npos && t.name.find("ffn_gate_inp") == std::string::npos) {
      CAPTURE(t.name);
      CHECK(out.tensor(t.name) == in.tensor(t.name));
    }

  // The same as pruning the checkpoint first and quantising after (llama-quantize's Q4_K_M mix).
  run_ok({"prune", hf.string(), (dir / "p").string(), "--keep-list", (dir / "keep.json").string(), "--quiet"});
  run_ok({"convert", (dir / "p").string(), (dir / "p-q4k.gguf").string(), "--dtype", "q4_k", "--quiet"});
  Stored ref = stored(dir / "p-q4k.gguf");
  REQUIRE(ref.header.tensors.size() == out.header.tensors.size());
  for (const auto& t : ref.header.tensors) {
    CAPTURE(t.name);
    CHECK(out.tensor(t.name) == ref.tensor(t.name));
  }

  Windows windows = byte_windows("c", 6, 48);
  fs::path ids = write_windows_jsonl(windows, dir / "ids.jsonl");
  double oracle = llama_cpp_nll({pruned}, windows)[0], own = moeforge_nll(pruned.string(), ids);
  MESSAGE("pruned Q4_K_M GGUF: llama.cpp " << oracle << ", moeforge reading it " << own);
  CHECK(std::fabs(oracle - own) <= 2e-2);
}

TEST_CASE("gguf input: observe and prune read quantised GGUFs; statistics from either side fit") {
  ScratchDir dir("gguf-observe");
  fs::path hf = mixtral256(dir / "m");
  fs::path f32 = dir / "m.gguf", q8 = dir / "m-q8.gguf";
  run_ok({"convert", hf.string(), f32.string(), "--quiet"});
  run_ok({"convert", hf.string(), q8.string(), "--dtype", "q8_0", "--quiet"});
  std::string data = fixture("corpora/en/calib.txt").string();
  for (const auto& [model, out] : std::vector<std::pair<std::string, std::string>>{{hf.string(), "hf.safetensors"}, {f32.string(), "f32.safetensors"},
                                                                                   {q8.string(), "q8.safetensors"}})
    run_ok({"observe", model, "--bytes", data, "--seq-len", "64", "--max-tokens", "2048", "--out", (dir / out).string(), "--quiet"});
  // A float32 GGUF is the same model: the same statistics, bit for bit.
  CHECK(run_moeforge({"diff", (dir / "f32.safetensors").string(), (dir / "hf.safetensors").string()}).status == 0);
  // Statistics observed on the checkpoint or on the quantised GGUF both drive pruning of the GGUF.
  for (const char* stats : {"hf.safetensors", "q8.safetensors"}) {
    CAPTURE(stats);
    fs::path out = dir / (std::string("pruned-") + stats + ".gguf");
    run_ok({"prune", q8.string(), out.string(), "--stats", (dir / stats).string(), "--keep", "3", "--report", (dir / (std::string(stats) + ".json")).string(), "--quiet"});
    CHECK(read_gguf(out).find_value("llama.expert_count")->get<int>() == 3);
  }
  // --data observes the GGUF on the spot; the output may be safetensors too.
  run_ok({"prune", q8.string(), (dir / "st").string(), "--bytes", data, "--seq-len", "64", "--max-tokens", "1024", "--ratio", "0.5", "--quiet"});
  CHECK(fs::exists(dir / "st" / "model.safetensors"));
}

TEST_CASE("gguf input: a round trip reads back exactly what was written (f32, f16, bf16)") {
  ScratchDir dir("gguf-roundtrip");
  for (const char* dtype : {"f32", "f16", "bf16"}) {
    CAPTURE(dtype);
    fs::path g = dir / (std::string(dtype) + ".gguf");
    run_ok({"convert", models("tiny-qwen2-moe"), g.string(), "--dtype", dtype, "--quiet"});
    run_ok({"convert", models("tiny-qwen2-moe"), (dir / dtype).string(), "--dtype", dtype, "--quiet"});
    auto r = run_moeforge({"diff", g.string(), (dir / dtype).string(), "--json"});
    INFO(r.out);
    // Norms, biases and routers stay float32 in GGUF; the rest carries the dtype's rounding exactly.
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["only_in_a"].size() == 0);
    CHECK(j["only_in_b"].size() == 0);
    for (const auto& t : j["tensors"])
      if (t["name"].get<std::string>().find("norm") == std::string::npos && t["name"].get<std::string>().find("bias") == std::string::npos &&
          t["name"].get<std::string>().find("gate.weight") == std::string::npos && t["name"].get<std::string>().find("shared_expert_gate") == std::string::npos)
        CHECK(t["max_abs"].get<double>() == 0.0);
  }
  // llama's q/k rows go through the pair permutation and back.
  run_ok({"convert", models("tiny-llama"), (dir / "llama.gguf").string(), "--quiet"});
  CHECK(run_moeforge({"diff", (dir / "llama.gguf").string(), models("tiny-llama")}).status == 0);
}

TEST_CASE("gguf input: malformed and unsupported GGUF files give one clear line and write nothing") {
  ScratchDir dir("gguf-malformed");
  fs::path good = dir / "good.gguf";
  run_ok({"convert", models("tiny-mixtral"), good.string(), "--dtype", "q8_0", "--quiet"});
  std::string bytes = read_text(good);
  GgufFile g = read_gguf(good);
  auto expect_refusal = [&](const std::string& name, const std::string& content, int status, const std::string& says) {
    CAPTURE(name);
    fs::path in = dir / (name + ".gguf");
    write_bytes(in, content);
    for (std::vector<std::string> args : {std::vector<std::string>{"prune", in.string(), (dir / (name + "-out.gguf")).string(), "--keep", "2"},
                                          std::vector<std::string>{"eval", in.string(), "--bytes", fixture("corpora/en/eval.txt").string(), "--max-tokens", "64"}}) {
      auto r = run_moeforge(args);
      CHECK(r.status == status);
      CHECK(r.err_lines() == 1);
      CHECK_MESSAGE(r.err.find(says) != std::string::npos, r.err);
      CHECK(r.err.find(in.string()) != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir / (name + "-out.gguf")));
  };
  expect_refusal("truncated", bytes.substr(0, bytes.size() - 1000), 3, "runs past the end of the file");
  expect_refusal("header-cut", bytes.substr(0, 200), 3, "truncated");
  // general.architecture "llama" → "llamb": an architecture moeforge cannot read.
  std::string arch = bytes;
  arch.replace(arch.find("llama"), 5, "llamb");
  expect_refusal("unknown-arch", arch, 5, "llamb");
  // A tensor renamed: the file no longer holds what its architecture needs.
  std::string renamed = bytes;
  renamed.replace(renamed.find("blk.1.attn_q.weight"), 19, "blk.1.attn_x.weight");
  expect_refusal("renamed-tensor", renamed, 3, "blk.1.attn_q.weight");
  // A Q8_0 tensor retyped: as Q2_K its 64-wide rows are not whole 256-blocks; as Q4_1 it is valid
  // but a type moeforge does not decode.
  auto retype = [&](uint32_t type) {
    std::string out = bytes;
    size_t at = out.find("blk.0.attn_k.weight") + 19 + 4 + 2 * 8;  // name, n_dims, ne[2], then the type
    std::memcpy(&out[at], &type, 4);
    return out;
  };
  expect_refusal("retyped-q2k", retype(10), 3, "not a multiple of the Q2_K block size");
  expect_refusal("retyped-q4_1", retype(3), 5, "type Q4_1 cannot be read");
}
