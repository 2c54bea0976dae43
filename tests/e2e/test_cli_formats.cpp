// End to end: inspect, diff and convert through the binary, malformed inputs, interrupted writes.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/sharded_writer.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }

std::string st_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

bool looks_like_checkpoint(const fs::path& dir) {
  if (!fs::exists(dir)) return false;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n == "config.json" || e.path().extension() == ".safetensors" || n == "model.safetensors.index.json") return true;
  }
  return false;
}

}  // namespace

TEST_CASE("inspect prints JSON for a safetensors directory and a GGUF file") {
  auto r = run_moeforge({"inspect", "--json", models("tiny-qwen2-moe")});
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["family"] == "qwen2_moe");
  CHECK(j["experts"] == 8);
  CHECK(j["shared_experts"] == 1);
  r = run_moeforge({"inspect", "--json", "--tensors", "--stats", "--filter", "embed", models("tiny-llama")});
  REQUIRE(r.status == 0);
  j = nlohmann::json::parse(r.out);
  REQUIRE(j["tensors"].size() == 1);
  CHECK(j["tensors"][0]["stats"]["nan"] == 0);
  // The population standard deviation of the embedding, computed here in float64 from the raw values.
  auto v = read_f64(Checkpoint(models("tiny-llama")).require_tensor("model.embed_tokens.weight"));
  double mean = 0, sq = 0;
  for (double x : v) mean += x / static_cast<double>(v.size());
  for (double x : v) sq += (x - mean) * (x - mean) / static_cast<double>(v.size());
  CHECK(j["tensors"][0]["stats"]["std"].get<double>() == doctest::Approx(std::sqrt(sq)).epsilon(1e-9));
  CHECK(j["tensors"][0]["stats"]["mean"].get<double>() == doctest::Approx(mean).epsilon(1e-9));
  r = run_moeforge({"inspect", "--json", models("tiny-random-llama-2.gguf")});
  REQUIRE(r.status == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["format"] == "gguf");
  CHECK(j["tensor_count"] == 12);
  CHECK(j["metadata"]["tokenizer.ggml.tokens"]["count"] == 32000);
  r = run_moeforge({"inspect", models("tiny-mixtral")});
  CHECK(r.status == 0);
  CHECK(r.out.find("active per token") != std::string::npos);
}

TEST_CASE("malformed inputs: non-zero status and one clear line naming file and tensor") {
  ScratchDir dir("bad");
  const std::string ok_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  struct Case {
    std::string name, bytes, expect;
  };
  std::vector<Case> cases = {
      {"truncated.safetensors", st_file(ok_header, std::string(8, 0)).substr(0, 30), "header length"},
      {"header_past_end.safetensors", std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10), "runs past the end"},
      {"bad_json.safetensors", st_file("{\"w\":[", ""), "not valid JSON"},
      {"unknown_dtype.safetensors", st_file(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0)), "tensor 'w': unknown dtype"},
      {"out_of_range.safetensors", st_file(ok_header, std::string(4, 0)), "tensor 'w'"},
      {"overlap.safetensors", st_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 0)), "tensor 'v': overlap"},
      {"gap.safetensors", st_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", std::string(12, 0)), "tensor 'v': gap"},
      {"shape_bytes.safetensors", st_file(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0)), "tensor 'w': shape [2] of BF16 needs 4 bytes"},
      {"duplicate.safetensors", st_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 0)), "tensor 'w': name appears more than once"},
      {"bad_magic.gguf", "GGUX" + std::string(40, '\0'), "bad magic"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    fs::path f = dir / c.name;
    write_bytes(f, c.bytes);
    auto r = run_moeforge({"inspect", f.string()});
    CHECK(r.status == 3);
    CHECK(r.err_lines() == 1);
    CHECK(r.err.find(f.string()) != std::string::npos);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.out.empty());
  }
  // GGUF with impossible counts and offsets.
  std::string gguf = read_text(fixture("models/tiny-random-llama-2.gguf"));
  std::string huge_count = gguf;
  uint64_t big = 1ull << 40;
  std::memcpy(huge_count.data() + 8, &big, 8);
  write_bytes(dir / "count.gguf", huge_count);
  auto r = run_moeforge({"inspect", (dir / "count.gguf").string()});
  CHECK(r.status == 3);
  CHECK(r.err.find("tensor count") != std::string::npos);
  write_bytes(dir / "cut.gguf", gguf.substr(0, 900000));
  r = run_moeforge({"inspect", (dir / "cut.gguf").string()});
  CHECK(r.status == 3);
  CHECK(r.err.find("runs past the end of the file") != std::string::npos);
  CHECK(r.err_lines() == 1);
}

TEST_CASE("index naming a missing shard or tensor") {
  ScratchDir dir("idx");
  fs::create_directories(dir / "m");
  for (const auto& e : fs::directory_iterator(fixture("models/tiny-mixtral-sharded"))) fs::copy_file(e.path(), dir / "m" / e.path().filename());
  fs::remove(dir / "m/model-00002-of-00004.safetensors");
  auto r = run_moeforge({"inspect", (dir / "m").string()});
  CHECK(r.status == 3);
  CHECK(r.err.find("model-00002-of-00004.safetensors\", which does not exist") != std::string::npos);
  CHECK(r.err_lines() == 1);
}

TEST_CASE("convert: bf16 equals the reference bits; sharding; refusals") {
  ScratchDir dir("convert");
  auto r = run_moeforge({"convert", models("tiny-mixtral"), (dir / "bf16").string(), "--dtype", "bf16"});
  REQUIRE(r.status == 0);
  r = run_moeforge({"diff", (dir / "bf16").string(), models("tiny-mixtral-bf16")});
  CHECK(r.status == 0);
  CHECK(r.out.find("EQUAL") != std::string::npos);
  auto cfg = nlohmann::json::parse(read_text(dir / "bf16/config.json"));
  CHECK(cfg["torch_dtype"] == "bfloat16");
  CHECK(cfg["rms_norm_eps"] == 1e-6);
  CHECK(fs::exists(dir / "bf16/generation_config.json"));
  CHECK(fs::exists(dir / "bf16/moeforge.json"));
  SafetensorsFile f(dir / "bf16/model.safetensors");
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("moeforge").find("\"convert\"") != std::string::npos);

  // Back to f32: bf16 values widen exactly, so diff against the f32 original is within bf16 rounding.
  r = run_moeforge({"convert", (dir / "bf16").string(), (dir / "back").string(), "--dtype", "f32", "--max-shard-size", "300KB"});
  REQUIRE(r.status == 0);
  CHECK(Checkpoint(dir / "back").shards().size() > 4);
  r = run_moeforge({"diff", (dir / "back").string(), models("tiny-mixtral"), "--json"});
  CHECK(r.status == 1);
  auto d = nlohmann::json::parse(r.out);
  CHECK(d["summary"]["max_abs"].get<double>() < 0.01);
  r = run_moeforge({"diff", (dir / "back").string(), models("tiny-mixtral"), "--atol", "0.01"});
  CHECK(r.status == 0);

  // Refusals happen before anything is written.
  r = run_moeforge({"convert", models("tiny-mixtral"), (dir / "bf16").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("--force") != std::string::npos);
  r = run_moeforge({"convert", (dir / "bf16").string(), (dir / "bf16").string(), "--force"});
  CHECK(r.status == 2);
  CHECK(r.err.find("inputs are never modified") != std::string::npos);
  r = run_moeforge({"convert", models("tiny-mixtral"), (dir / "x").string(), "--dtype", "int4"});
  CHECK(r.status == 2);
  CHECK_FALSE(fs::exists(dir / "x"));
  r = run_moeforge({"convert", models("tiny-mixtral"), (dir / "x").string(), "--max-shard-size", "5XB"});
  CHECK(r.status == 2);
  r = run_moeforge({"convert", models("tiny-mixtral"), (dir / "dry").string(), "--dry-run", "--json"});
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["tensors"].size() == 96);
  CHECK_FALSE(fs::exists(dir / "dry"));
}

TEST_CASE("diff reports missing tensors and shape differences") {
  auto r = run_moeforge({"diff", models("tiny-llama"), models("tiny-mistral"), "--json"});
  CHECK(r.status == 1);
  auto d = nlohmann::json::parse(r.out);
  CHECK(d["equal"] == false);
  CHECK(d["summary"]["differing"].get<int>() > 0);
  CHECK(d["config_differences"].size() > 0);
  r = run_moeforge({"diff", models("tiny-mixtral"), models("tiny-mixtral-sharded")});
  CHECK(r.status == 0);
}

TEST_CASE("an interrupted convert leaves nothing that looks like a checkpoint") {
  ScratchDir dir("kill");
  make_big_checkpoint(dir / "big", 512);
  for (int sig : {SIGKILL, SIGINT}) {
    CAPTURE(sig);
    fs::path out = dir / ("out" + std::to_string(sig));
    pid_t pid = fork();
    if (pid == 0) {
      std::string bin = MOEFORGE_BINARY;
      std::string in = (dir / "big").string(), o = out.string();
      execl(bin.c_str(), bin.c_str(), "convert", in.c_str(), o.c_str(), "--dtype", "bf16", "--threads", "1", "--quiet", nullptr);
      _exit(127);
    }
    // Strike as soon as the writer has created its partial files, long before it can finish.
    bool started = false;
    for (int i = 0; i < 20000 && !started; ++i) {
      usleep(500);
      if (fs::exists(out))
        for (const auto& e : fs::directory_iterator(out)) started = started || e.path().extension() == ".partial";
    }
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    bool finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    REQUIRE(started);
    REQUIRE_FALSE(finished);
    if (sig == SIGINT) CHECK(WEXITSTATUS(status) == 130);
    CHECK_FALSE(looks_like_checkpoint(out));
    if (sig == SIGINT && fs::exists(out)) CHECK(fs::is_empty(out));  // partial files removed too
  }
}
