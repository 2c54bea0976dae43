// End to end: every writing verb writes GGUF that llama.cpp runs with the NLL of the same verb's
// safetensors output; DeepSeek-V3 against its golden logits; llama.cpp split files; dry runs
// and the output rules.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

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

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }

}  // namespace

TEST_CASE("gguf verbs: compose, upcycle, prune and merge-experts write GGUF that llama.cpp runs") {
  ScratchDir dir("gguf-verbs");
  std::string btx = models("btx-bytes");
  check_gguf_matches_safetensors({"compose", "--expert", btx + "/expert-en", "--expert", btx + "/expert-py", "--expert", btx + "/expert-de", "--expert",
                                  btx + "/expert-c", "--router", "random", "--quiet"},
                                 dir.path(), "compose", "py", 8, 48);
  check_gguf_matches_safetensors({"upcycle", models("tiny-qwen3"), "--experts", "4", "--granularity", "2", "--quiet"}, dir.path(), "upcycle", "py", 8, 48);
  write_bytes(dir / "keep.json", R"({"0": [6, 1, 3], "1": [0, 2, 5], "2": [7, 4, 1]})");
  check_gguf_matches_safetensors({"prune", models("tiny-mixtral"), "--keep-list", (dir / "keep.json").string(), "--quiet"}, dir.path(), "prune", "py", 8, 48);
  write_bytes(dir / "groups.json", R"({"0": [[0, 1], [2, 3, 4], [5], [6, 7]], "1": [[0, 7], [1], [2, 3], [4, 5, 6]], "2": [[0], [1], [2, 3, 4, 5], [6, 7]]})");
  check_gguf_matches_safetensors({"merge-experts", models("tiny-qwen3-moe"), "--method", "average", "--groups-file", (dir / "groups.json").string(), "--quiet"},
                                 dir.path(), "merge", "py", 8, 48);
}

TEST_CASE("gguf verbs: DeepSeek-V3 as deepseek2 reproduces the golden logits in llama.cpp") {
  ScratchDir dir("gguf-deepseek");
  fs::path out = dir / "dsv3.gguf";
  run_ok({"convert", models("tiny-deepseek-v3"), out.string(), "--quiet"});
  SafetensorsFile golden(fixture("models/tiny-deepseek-v3/golden.safetensors"));
  std::vector<float> logits, ids_f;
  for (const auto& t : golden.tensors()) {
    if (t.name == "logits") logits = read_f32(t);
    if (t.name == "input_ids") {
      std::vector<double> v = read_f64(t);
      ids_f.assign(v.begin(), v.end());
    }
  }
  REQUIRE(logits.size() == 2 * 16 * 256);
  Windows windows(2);
  double total = 0;
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < 16; ++i) windows[w].push_back(static_cast<int32_t>(ids_f[static_cast<size_t>(w * 16 + i)]));
    for (int i = 0; i + 1 < 16; ++i) {  // log-softmax of the golden logits at position i, scoring token i + 1
      const float* l = &logits[static_cast<size_t>((w * 16 + i) * 256)];
      double mx = *std::max_element(l, l + 256), sum = 0;
      for (int v = 0; v < 256; ++v) sum += std::exp(l[v] - mx);
      total += -(l[windows[w][i + 1]] - mx - std::log(sum));
    }
  }
  double golden_nll = total / 30, oracle = llama_cpp_nll({out}, windows)[0];
  MESSAGE("deepseek2: llama.cpp " << oracle << ", golden " << golden_nll);
  CHECK(std::fabs(oracle - golden_nll) <= 1e-3);
}

TEST_CASE("gguf verbs: --max-shard-size writes llama.cpp split files that load like one file") {
  ScratchDir dir("gguf-split");
  run_ok({"convert", models("tiny-mixtral"), (dir / "one.gguf").string(), "--quiet"});
  run_ok({"convert", models("tiny-mixtral"), (dir / "m.gguf").string(), "--max-shard-size", "600KB", "--quiet"});
  CHECK_FALSE(fs::exists(dir / "m.gguf"));
  std::vector<fs::path> parts;
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("m-", 0) == 0) parts.push_back(e.path());
  std::sort(parts.begin(), parts.end());
  REQUIRE(parts.size() >= 3);
  const std::string n = std::to_string(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) CHECK(parts[i].filename() == "m-0000" + std::to_string(i + 1) + "-of-0000" + n + ".gguf");
  GgufFile first = read_gguf(parts[0]), second = read_gguf(parts[1]);
  CHECK(first.find_value("split.count")->get<size_t>() == parts.size());
  CHECK(first.metadata["split.no"]["type"] == "UINT16");
  CHECK(first.metadata["split.tensors.count"]["type"] == "INT32");
  CHECK(second.metadata.size() == 3);  // the other splits hold only the split keys
  CHECK(second.find_value("split.no")->get<int>() == 1);
  size_t tensors = 0;
  for (const auto& p : parts) tensors += read_gguf(p).tensors.size();
  CHECK(tensors == read_gguf(dir / "one.gguf").tensors.size());
  Windows windows = byte_windows("de", 4, 32);
  auto nll = llama_cpp_nll({parts[0], dir / "one.gguf"}, windows);
  CHECK(std::fabs(nll[0] - nll[1]) <= 1e-9);
  auto r = run_moeforge({"diff", parts[0].string(), models("tiny-mixtral")});  // moeforge reads the splits too
  CHECK(r.status == 0);
}

TEST_CASE("gguf verbs: dry run, --force and refusals") {
  ScratchDir dir("gguf-rules");
  fs::path out = dir / "x.gguf";
  auto r = run_moeforge({"convert", models("tiny-qwen2-moe"), out.string(), "--dtype", "q8_0", "--dry-run", "--json"});
  REQUIRE(r.status == 0);
  auto plan = nlohmann::json::parse(r.out);
  CHECK(plan["format"] == "gguf");
  CHECK(plan["metadata"]["general.architecture"] == "\"qwen2moe\"");
  CHECK_FALSE(fs::exists(out));
  r = run_moeforge({"convert", models("tiny-qwen2-moe"), out.string()});
  REQUIRE(r.status == 0);
  r = run_moeforge({"convert", models("tiny-qwen2-moe"), out.string()});
  CHECK(r.status == 2);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(run_moeforge({"convert", models("tiny-qwen2-moe"), out.string(), "--force"}).status == 0);
  // llama.cpp cannot express these: refused with the reason, nothing written.
  r = run_moeforge({"convert", models("tiny-olmoe"), (dir / "o.gguf").string()});
  CHECK(r.status == 5);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find("num_key_value_heads") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.gguf"));
  r = run_moeforge({"convert", models("tiny-llama"), (dir / "q").string(), "--dtype", "q8_0"});
  CHECK(r.status == 2);
  CHECK(r.err.find("GGUF type") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "q"));
  r = run_moeforge({"convert", models("tiny-llama"), (dir / "f.gguf").string(), "--dtype", "f64"});
  CHECK(r.status == 2);
  CHECK_FALSE(fs::exists(dir / "f.gguf"));
  // A recipe's output may be a .gguf file; its provenance is stored in the metadata.
  r = run_moeforge({"run", source_dir() + "/recipes/examples/btx-compose.yaml", "--out", (dir / "recipe.gguf").string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto provenance = nlohmann::json::parse(read_gguf(dir / "recipe.gguf").find_value("moeforge.provenance")->get<std::string>());
  CHECK(provenance.contains("recipe"));
}
