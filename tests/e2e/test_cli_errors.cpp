// End to end: hostile or mistaken inputs that crashed, hung, ran away with memory or produced a
// wrong result silently in moeforge 0.1. Each must now end quickly with one clear line and the
// right exit status (README "Errors"), writing nothing.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cmath>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "core/output_safety.hpp"
#include "engine/stats_file.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }
std::string corpus(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

struct Case {
  std::string name;
  std::vector<std::string> args;  // "{dir}" is replaced by the scratch directory
  int status;
  const char* says;
};

void run_cases(const std::vector<Case>& cases, const fs::path& dir) {
  for (const auto& c : cases) {
    CAPTURE(c.name);
    std::vector<std::string> args;
    for (std::string a : c.args) {
      for (size_t k; (k = a.find("{dir}")) != std::string::npos;) a.replace(k, 5, dir.string());
      args.push_back(a);
    }
    auto r = run_moeforge(args, 60);
    CAPTURE(r.err);
    CHECK(r.status == c.status);
    CHECK(r.err_lines() == 1);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out"));
  }
}

void write_config_variant(const fs::path& to, const std::string& from, const std::function<void(nlohmann::json&)>& edit) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(fixture("models/" + from))) fs::copy_file(e.path(), to / e.path().filename());
  auto j = nlohmann::json::parse(read_text(to / "config.json"));
  edit(j);
  fs::remove(to / "config.json");
  write_bytes(to / "config.json", j.dump(2));
}

}  // namespace

TEST_CASE("hostile recipes: aliases, duplicates, documents, types — bounded and named") {
  ScratchDir dir("yaml");
  write_bytes(dir / "recursive.yaml", "a: &x [*x]\nsteps: []\n");
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1)), list;
    for (int k = 0; k < 10; ++k) list += std::string(k ? ", " : "") + "*" + prev;
    laughs += std::string(1, c) + ": &" + std::string(1, c) + " [" + list + "]\n";
  }
  write_bytes(dir / "laughs.yaml", laughs + "steps: [*i]\n");
  write_bytes(dir / "dup.yaml", "steps:\n  - prune: {keep: 1}\nsteps:\n  - prune: {keep: 2}\n");
  write_bytes(dir / "multi.yaml", "steps:\n  - prune: {keep: 1}\n---\nsteps: []\n");
  write_bytes(dir / "comma.yaml", ",\n");  // yaml-cpp's LoadAll loops forever on this
  write_bytes(dir / "float.yaml", "base_model: " + models("btx-bytes/base") + "\ngate_mode: random\nexperts_per_token: 2.5\nexperts:\n  - source_model: " +
                                      models("btx-bytes/expert-en") + "\n  - source_model: " + models("btx-bytes/expert-de") + "\n");
  write_bytes(dir / "huge.yaml", "output: out\nsteps:\n  - prune: {model: " + models("tiny-mixtral") + ", keep: 1e400}\n");
  write_bytes(dir / "inf.yaml", "base_model: " + models("btx-bytes/base") + "\ngate_mode: random\nexperts:\n  - source_model: " +
                                    models("btx-bytes/expert-en") + "\n    residual_scale: .inf\n  - source_model: " + models("btx-bytes/expert-de") + "\n");
  write_bytes(dir / "types.yaml", "base_model: " + models("btx-bytes/base") + "\ngate_mode: [hidden]\nexperts:\n  - source_model: " +
                                      models("btx-bytes/expert-en") + "\n");
  write_bytes(dir / "prompt.yaml", "base_model: " + models("btx-bytes/base") + "\nexperts:\n  - source_model: " + models("btx-bytes/expert-en") +
                                       "\n    positive_prompts: [\"\"]\n  - source_model: " + models("btx-bytes/expert-de") +
                                       "\n    positive_prompts: [\"Hallo\"]\n");
  write_bytes(dir / "upcycle.yaml", "output: out\nsteps:\n  - upcycle: {model: " + models("tiny-llama") + ", experts: 2000000}\n");
  std::string o = (dir / "out").string();
  run_cases({{"recursive alias", {"run", (dir / "recursive.yaml").string(), "--out", o}, 2, "nested deeper than"},
             {"billion laughs", {"run", (dir / "laughs.yaml").string(), "--out", o}, 2, "expands to more than"},
             {"duplicate key", {"run", (dir / "dup.yaml").string(), "--out", o}, 2, "steps: appears twice"},
             {"two documents", {"run", (dir / "multi.yaml").string(), "--out", o}, 2, "more than one YAML document"},
             {"lone comma", {"run", (dir / "comma.yaml").string(), "--out", o}, 2, "only a stray top-level token"},
             {"experts_per_token 2.5", {"run", (dir / "float.yaml").string(), "--out", o}, 2, "experts_per_token: must be an integer"},
             {"1e400", {"run", (dir / "huge.yaml").string(), "--out", o}, 2, "keep: 1e400 is out of the range"},
             {"residual_scale .inf", {"run", (dir / "inf.yaml").string(), "--out", o}, 2, "residual_scale: must be finite"},
             {"wrong type in mergekit config", {"run", (dir / "types.yaml").string(), "--out", o}, 2, "gate_mode: must be a string"},
             {"empty prompt", {"run", (dir / "prompt.yaml").string(), "--out", o}, 2, "positive_prompts[0]: is empty"},
             {"upcycle 2000000 experts", {"run", (dir / "upcycle.yaml").string(), "--out", o}, 2, "more than the 65536"}},
            dir.path());
}

TEST_CASE("command-line numbers are parsed as integers, ranges checked with the value as given") {
  ScratchDir dir("numbers");
  std::string mix = models("tiny-mixtral"), o = (dir / "out").string();
  write_bytes(dir / "k.json", "{\"0\": [1]}");
  run_cases({{"--seed 1e30", {"prune", mix, o, "--keep", "2", "--criterion", "random", "--seed", "1e30"}, 2, "--seed: must be an integer"},
             {"--keep 10^12", {"prune", mix, o, "--keep", "1000000000000", "--criterion", "random"}, 2, "1000000000000"},
             {"--seed past int64", {"prune", mix, o, "--keep", "2", "--criterion", "random", "--seed", "99999999999999999999"}, 2, "out of range"},
             {"--keep-list with --drop-list", {"prune", mix, o, "--keep-list", "{dir}/k.json", "--drop-list", "{dir}/k.json"}, 2, "give one of them"},
             {"--router-std nan", {"upcycle", models("tiny-llama"), o, "--router-std", "nan"}, 2, "must be a finite number"},
             {"unknown verb", {"frobnicate", "x"}, 2, "unknown verb \"frobnicate\""}},
            dir.path());
  // A token id past int32 is reported as written.
  write_bytes(dir / "ids.jsonl", "{\"input_ids\": [1, 9999999999999]}\n");
  auto r = run_moeforge({"eval", models("tiny-llama"), "--data", (dir / "ids.jsonl").string(), "--seq-len", "4"});
  CHECK(r.status == 3);
  CHECK(r.err.find("9999999999999") != std::string::npos);
  // More threads than cores: capped with a warning, and the same result.
  r = run_moeforge({"eval", models("btx-bytes/base"), "--bytes", corpus("en"), "--max-tokens", "512", "--seq-len", "128", "--threads", "100000", "--json"});
  CHECK(r.status == 0);
  CHECK(r.err.find("more than the") != std::string::npos);
  auto one = run_moeforge({"eval", models("btx-bytes/base"), "--bytes", corpus("en"), "--max-tokens", "512", "--seq-len", "128", "--threads", "1", "--json"});
  CHECK(nlohmann::json::parse(r.out)["files"][0]["mean_nll"] == nlohmann::json::parse(one.out)["files"][0]["mean_nll"]);
}

TEST_CASE("FIFOs, devices and bad paths: refused before reading, exit 6 with the path") {
  ScratchDir dir("fifo");
  fs::path m = dir / "m";
  fs::create_directories(m);
  fs::copy_file(fixture("models/tiny-llama/model.safetensors"), m / "model.safetensors");
  REQUIRE(mkfifo((m / "config.json").c_str(), 0644) == 0);
  fs::path shards = dir / "shards";
  fs::create_directories(shards);
  fs::copy_file(fixture("models/tiny-llama/config.json"), shards / "config.json");
  REQUIRE(mkfifo((shards / "model.safetensors").c_str(), 0644) == 0);
  REQUIRE(mkfifo((dir / "data.txt").c_str(), 0644) == 0);
  write_bytes(dir / "file", "x");
  fs::create_symlink(dir / "loop1", dir / "loop2");
  fs::create_symlink(dir / "loop2", dir / "loop1");
  std::string o = (dir / "out").string();
  run_cases({{"FIFO config.json", {"inspect", m.string()}, 6, "config.json: is not a regular file"},
             {"FIFO model.safetensors", {"inspect", shards.string()}, 6, "model.safetensors: is not a regular file"},
             {"FIFO data", {"eval", models("btx-bytes/base"), "--bytes", (dir / "data.txt").string()}, 6, "data.txt: is not a regular file"},
             {"device as data", {"eval", models("btx-bytes/base"), "--bytes", "/dev/zero"}, 6, "/dev/zero: is not a regular file"},
             {"FIFO recipe", {"run", (dir / "data.txt").string(), "--out", o}, 6, "data.txt: is not a regular file"},
             {"a file where a folder is expected", {"convert", models("tiny-llama"), (dir / "file" / "out").string()}, 6, "file"},
             {"name too long", {"convert", models("tiny-llama"), (dir / std::string(300, 'n')).string()}, 6, "nnnn"},
             {"symlink loop", {"convert", models("tiny-llama"), (dir / "loop1" / "out").string()}, 6, "loop1"}},
            dir.path());
}

TEST_CASE("configs that misstate the tensors are refused by every writing verb") {
  ScratchDir dir("config");
  write_config_variant(dir / "wide", "tiny-llama", [](auto& j) { j["hidden_size"] = 128; });
  write_config_variant(dir / "short", "tiny-llama", [](auto& j) { j["num_hidden_layers"] = 2; });
  write_config_variant(dir / "huge", "tiny-llama", [](auto& j) { j["num_hidden_layers"] = 4294967299ll; });
  write_config_variant(dir / "quoted", "tiny-llama", [](auto& j) { j["rms_norm_eps"] = "1e-5"; });
  write_config_variant(dir / "moe-short", "tiny-mixtral", [](auto& j) { j["num_local_experts"] = 6; });
  std::string o = (dir / "out").string();
  run_cases({{"hidden_size 128 on 64-wide tensors", {"upcycle", (dir / "wide").string(), o}, 4, "config.json implies"},
             {"fewer layers than tensors", {"upcycle", (dir / "short").string(), o}, 4, "beyond the 2 layers"},
             {"2^32 + 3 layers", {"upcycle", (dir / "huge").string(), o}, 3, "num_hidden_layers\" = 4294967299 is out of range"},
             {"a quoted number", {"upcycle", (dir / "quoted").string(), o}, 3, "rms_norm_eps\" must be a number"},
             {"fewer experts than tensors", {"prune", (dir / "moe-short").string(), o, "--keep", "2", "--criterion", "random"}, 4, "disagree"},
             {"compose from a misstated expert", {"compose", "--expert", (dir / "wide").string(), "--expert", models("tiny-llama"), o}, 4, "config.json implies"}},
            dir.path());
}

TEST_CASE("silent wrong results are now loud, or right") {
  ScratchDir dir("silent");
  std::string btx = fixture("models/btx-bytes").string();
  // Expert noise and down-scaling apply at f32 too.
  std::vector<std::string> compose = {"compose", "--expert", btx + "/expert-en", "--expert", btx + "/expert-de", "--quiet"};
  auto plain = compose, noisy = compose;
  plain.push_back((dir / "plain").string());
  noisy.insert(noisy.end(), {(dir / "noisy").string(), "--expert-noise", "0.01,0", "--expert-down-scale", "1,0.5", "--dtype", "f32"});
  REQUIRE(run_moeforge(plain).status == 0);
  REQUIRE(run_moeforge(noisy).status == 0);
  auto d = run_moeforge({"diff", (dir / "noisy").string(), (dir / "plain").string(), "--json", "--max-rows", "1000"});
  CHECK(d.status == 1);
  std::map<std::string, bool> equal;
  const auto report = nlohmann::json::parse(d.out);  // kept alive: a range-for over a temporary's member dangles
  for (const auto& t : report["tensors"]) equal[t["name"].get<std::string>()] = t["equal"].get<bool>();
  CHECK_FALSE(equal.at("model.layers.0.block_sparse_moe.experts.0.w1.weight"));  // noise on expert 0
  CHECK_FALSE(equal.at("model.layers.0.block_sparse_moe.experts.1.w2.weight"));  // down projection of expert 1 halved
  CHECK(equal.at("model.layers.0.block_sparse_moe.experts.1.w1.weight"));        // expert 1's gate untouched
  // Nothing to predict.
  write_bytes(dir / "one.txt", "x");
  auto r = run_moeforge({"eval", btx + "/base", "--bytes", (dir / "one.txt").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("no token is predicted") != std::string::npos);
  r = run_moeforge({"eval", btx + "/base", "--bytes", corpus("en"), "--seq-len", "1"});
  CHECK(r.status == 2);
  // --ratio that drops nothing warns.
  r = run_moeforge({"prune", btx + "/merged-mixtral-top2", (dir / "p").string(), "--ratio", "0.01", "--criterion", "random"});
  CHECK(r.err.find("drops none") != std::string::npos);
  // NaN scores are refused, naming layer and expert.
  REQUIRE(run_moeforge({"observe", btx + "/merged-mixtral-top2", "--bytes", corpus("de"), "--max-tokens", "512", "--seq-len", "128", "--out",
                        (dir / "s.safetensors").string(), "--quiet"})
              .status == 0);
  CalibrationStats s = read_stats(dir / "s.safetensors");
  s.files[0].experts[1].reap_sum[2] = std::nan("");
  {
    OutputTransaction tx(false);
    write_stats(s, tx, dir / "nan.safetensors");
    tx.commit();
  }
  r = run_moeforge({"prune", btx + "/merged-mixtral-top2", (dir / "q").string(), "--stats", (dir / "nan.safetensors").string(), "--keep", "2"});
  CHECK(r.status == 3);
  CHECK(r.err.find("layer 1, expert 2") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "q"));
}

TEST_CASE("inspect: all-Inf tensors have no min/max; GGUF sizes that overflow are refused") {
  ScratchDir dir("inspect");
  // One F32 tensor of +Inf values.
  std::string header = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  const char inf[4] = {0, 0, static_cast<char>(0x80), 0x7f};
  bytes += header + std::string(inf, 4) + std::string(inf, 4);
  write_bytes(dir / "inf.safetensors", bytes);
  auto r = run_moeforge({"inspect", (dir / "inf.safetensors").string(), "--stats"});
  CHECK(r.status == 0);
  CHECK(r.out.find("min n/a max n/a") != std::string::npos);
  CHECK(r.out.find("inf 2") != std::string::npos);
  // GGUF v3 with one F64 tensor of shape [2^31, 2^31]: 2^65 bytes wrap to 0 in 64 bits.
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [](uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
  std::string g = "GGUF" + u32(3) + u64(1) + u64(0) + u64(1) + "t" + u32(2) + u64(1ull << 31) + u64(1ull << 31) + u32(28) + u64(0);
  g.append((32 - g.size() % 32) % 32, '\0');
  write_bytes(dir / "big.gguf", g);
  r = run_moeforge({"inspect", (dir / "big.gguf").string()});
  CHECK(r.status == 3);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find("more than 2^63 bytes") != std::string::npos);
}
