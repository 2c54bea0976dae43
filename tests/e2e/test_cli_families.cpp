// End to end on deepseek_v3, glm4_moe and gpt_oss (tests/reference/families): inspect counts and
// layouts, observe → prune (REAP) → eval, keep-all prunes reproduce the model, MXFP4 experts are
// pruned by copying blocks (same result as the plain copy of the same weights), and malformed
// inputs give one clear error line with nothing written.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <span>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.hpp"
#include "formats/safetensors.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string model(const std::string& dir) { return family_model(dir).string(); }
std::string corpus() { return fixture("corpora/en/eval.txt").string(); }

nlohmann::json json_of(const RunResult& r) {
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

// Mean NLL of a model on the first 1024 bytes of the corpus (16 windows of 64).
double mean_nll(const std::string& dir) {
  auto r = json_of(run_moeforge({"eval", dir, "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024", "--json"}));
  return r["files"].back()["mean_nll"].get<double>();
}

// A copy of a reference model with its config.json edited.
fs::path edited_copy(const ScratchDir& scratch, const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  fs::path out = scratch / (dir + "-edited");
  fs::create_directories(out);
  fs::copy_file(family_model(dir) / "model.safetensors", out / "model.safetensors");
  auto cfg = nlohmann::json::parse(read_text(family_model(dir) / "config.json"));
  edit(cfg);
  write_bytes(out / "config.json", cfg.dump(2));
  return out;
}

// Drops experts 1 and 2 of both layers.
std::string write_drop_list(const ScratchDir& scratch) {
  fs::path p = scratch / "drop.json";
  write_bytes(p, R"({"0": [1, 2], "1": [1, 2]})");
  return p.string();
}

}  // namespace

TEST_CASE("inspect: parameters (total and active, MLA, shared experts, MXFP4 weights) and the expert layout") {
  struct Want {
    const char* dir;
    uint64_t total, active;  // tests/reference/families/tools/param_count.py
    const char* layout;
  };
  for (const Want& w : {Want{"tiny-deepseek-v3-yarn", 110472, 95112, "per-expert"}, Want{"tiny-glm4-moe", 123336, 104904, "per-expert"},
                        Want{"tiny-gpt-oss", 86128, 60912, "fused (gpt-oss, gate/up interleaved)"},
                        Want{"tiny-gpt-oss-mxfp4", 86128, 60912, "fused (gpt-oss), MXFP4 blocks and scales"}}) {
    CAPTURE(w.dir);
    auto r = json_of(run_moeforge({"inspect", model(w.dir), "--json"}));
    CHECK(r["parameters"]["total"] == w.total);
    CHECK(r["parameters"]["active_per_token"] == w.active);
    CHECK(r["expert_layout"] == w.layout);
    CHECK(r["warnings"].empty());
  }
}

TEST_CASE("observe, prune (REAP) and eval on glm4_moe and gpt_oss; keep-all prunes reproduce the model") {
  ScratchDir scratch("families");
  for (const char* dir : {"tiny-glm4-moe", "tiny-gpt-oss"}) {
    CAPTURE(dir);
    std::string stats = (scratch / (std::string(dir) + ".safetensors")).string();
    REQUIRE(run_moeforge({"observe", model(dir), "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024", "--out", stats, "--quiet"}).status == 0);
    int experts = std::string(dir) == "tiny-gpt-oss" ? 4 : 8;
    std::string all = (scratch / (std::string(dir) + "-all")).string(), half = (scratch / (std::string(dir) + "-half")).string();
    REQUIRE(run_moeforge({"prune", model(dir), all, "--stats", stats, "--keep", std::to_string(experts)}).status == 0);
    REQUIRE(run_moeforge({"prune", model(dir), half, "--stats", stats, "--keep", std::to_string(experts / 2), "--criterion", "reap"}).status == 0);
    double base = mean_nll(model(dir));
    CHECK(mean_nll(all) == base);
    double pruned = mean_nll(half);
    CHECK(std::isfinite(pruned));
    CHECK(pruned != base);
    auto r = json_of(run_moeforge({"inspect", half, "--json"}));
    CHECK(r["experts_per_layer"][0] == experts / 2);
    CHECK(r["warnings"].empty());
  }
}

TEST_CASE("merge-experts on glm4_moe and deepseek_v3 (sub-moe, full rank); the merged models run") {
  ScratchDir scratch("families-merge");
  // tiny-deepseek-v3-yarn has 4 groups of 2: any reduction would leave groups of 1, so use 2 groups.
  fs::path ds = edited_copy(scratch, "tiny-deepseek-v3-yarn", [](nlohmann::json& c) { c["n_group"] = 2; c["topk_group"] = 1; });
  for (const std::string& dir : {model("tiny-glm4-moe"), ds.string()}) {
    CAPTURE(dir);
    std::string out = (scratch / fs::path(dir).filename().string()).string() + "-merged";
    REQUIRE(run_moeforge({"merge-experts", dir, out, "--groups", "4", "--bytes", corpus(), "--seq-len", "64", "--max-tokens", "1024"}).status == 0);
    auto r = json_of(run_moeforge({"inspect", out, "--json"}));
    CHECK(r["experts_per_layer"].back() == 4);
    CHECK(r["warnings"].empty());
    double merged = mean_nll(out), base = mean_nll(dir);
    CHECK(std::isfinite(merged));
    CHECK(merged != base);
  }
  // 4 of 8 experts in 4 groups of 2 leave groups of 1: the group limit is lifted (with a warning).
  std::string pruned = (scratch / "ds-pruned").string();
  RunResult r = run_moeforge({"prune", model("tiny-deepseek-v3-yarn"), pruned, "--keep", "4", "--criterion", "random"});
  REQUIRE(r.status == 0);
  CHECK(r.err.find("group-limited routing removed") != std::string::npos);
  auto cfg = nlohmann::json::parse(read_text(fs::path(pruned) / "config.json"));
  CHECK(cfg["n_group"] == 1);
  CHECK(cfg["n_routed_experts"] == 4);
  CHECK(std::isfinite(mean_nll(pruned)));
}

TEST_CASE("gpt_oss MXFP4: pruning copies blocks and scales; the result equals pruning the plain copy") {
  ScratchDir scratch("mxfp4");
  std::string plain = (scratch / "plain").string(), mx = (scratch / "mx").string();
  REQUIRE(run_moeforge({"prune", model("tiny-gpt-oss"), plain, "--drop-list", write_drop_list(scratch)}).status == 0);
  REQUIRE(run_moeforge({"prune", model("tiny-gpt-oss-mxfp4"), mx, "--drop-list", write_drop_list(scratch)}).status == 0);
  CHECK(mean_nll(mx) == mean_nll(plain));
  auto cfg = nlohmann::json::parse(read_text(fs::path(mx) / "config.json"));
  CHECK(cfg["num_local_experts"] == 2);
  CHECK(cfg["experts_per_token"] == 2);
  CHECK(cfg["quantization_config"]["quant_method"] == "mxfp4");
  auto r = json_of(run_moeforge({"inspect", mx, "--json"}));
  CHECK(r["dtypes"]["U8"]["tensors"] == 8);
  CHECK(r["warnings"].empty());
}

// Every tensor of a and b has the same name, dtype, shape and bytes.
void check_same_tensors(const fs::path& a, const fs::path& b) {
  moeforge::Checkpoint x(a), y(b);
  REQUIRE(x.tensors().size() == y.tensors().size());
  for (const moeforge::TensorInfo* t : x.tensors()) {
    CAPTURE(t->name);
    const moeforge::TensorInfo* u = y.find_tensor(t->name);
    REQUIRE(u != nullptr);
    CHECK(t->shape == u->shape);
    auto p = x.data(*t), q = y.data(*u);
    CHECK((p.size() == q.size() && std::equal(p.begin(), p.end(), q.begin())));
  }
}

TEST_CASE("transformers-v5 fused layout: read, written bit for bit like transformers, round trip, prune keeps the layout") {
  ScratchDir scratch("fused");
  fs::path fused = scratch / "fused", back = scratch / "back";
  REQUIRE(run_moeforge({"convert", model("tiny-deepseek-v3-yarn"), fused.string(), "--layout", "fused"}).status == 0);
  REQUIRE(run_moeforge({"convert", fused.string(), back.string(), "--layout", "per-expert"}).status == 0);
  // transformers 5.2.0's own fused file and its per-expert source: same tensors, same bytes.
  moeforge::SafetensorsFile mine(fused / "model.safetensors"), theirs(family_model("tiny-deepseek-v3-yarn-fused/model.safetensors"));
  REQUIRE(mine.tensors().size() == theirs.tensors().size());
  for (size_t i = 0; i < mine.tensors().size(); ++i) {
    CAPTURE(mine.tensors()[i].name);
    CHECK(mine.tensors()[i].name == theirs.tensors()[i].name);
    auto p = mine.data(mine.tensors()[i]), q = theirs.data(theirs.tensors()[i]);
    CHECK((p.size() == q.size() && std::equal(p.begin(), p.end(), q.begin())));
  }
  check_same_tensors(back, family_model("tiny-deepseek-v3-yarn"));
  auto r = json_of(run_moeforge({"inspect", model("tiny-deepseek-v3-yarn-fused"), "--json"}));
  CHECK(r["expert_layout"] == "fused (transformers v5)");
  CHECK(r["experts_per_layer"][0] == 8);
  CHECK(r["parameters"]["active_per_token"] == 95112);
  CHECK(r["warnings"].empty());
  CHECK(mean_nll(model("tiny-deepseek-v3-yarn-fused")) == mean_nll(model("tiny-deepseek-v3-yarn")));
  // Pruning a fused checkpoint writes the fused layout (the input's) unless --layout says otherwise.
  fs::path glm_fused = scratch / "glm-fused", pruned = scratch / "pruned", pruned_flat = scratch / "pruned-flat";
  REQUIRE(run_moeforge({"convert", model("tiny-glm4-moe"), glm_fused.string(), "--layout", "fused"}).status == 0);
  REQUIRE(run_moeforge({"prune", glm_fused.string(), pruned.string(), "--keep", "4", "--criterion", "random"}).status == 0);
  REQUIRE(run_moeforge({"prune", model("tiny-glm4-moe"), pruned_flat.string(), "--keep", "4", "--criterion", "random"}).status == 0);
  CHECK(json_of(run_moeforge({"inspect", pruned.string(), "--json"}))["expert_layout"] == "fused (transformers v5)");
  CHECK(json_of(run_moeforge({"inspect", pruned_flat.string(), "--json"}))["expert_layout"] == "per-expert");
  check_same_tensors(pruned, pruned_flat);
}

uint64_t fnv1a64(std::span<const std::byte> bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::byte b : bytes) h = (h ^ static_cast<uint64_t>(b)) * 0x100000001b3ull;
  return h;
}

TEST_CASE("transformers-v5 fused layout of mixtral, qwen3_moe and glm4_moe: names, shapes and bytes as transformers 5.2.0 writes them") {
  ScratchDir scratch("fused-hashes");
  struct Case {
    std::string source, reference;
  };
  for (const Case& c : {Case{fixture("models/tiny-mixtral").string(), "tiny-mixtral-fused"},
                        Case{fixture("models/tiny-qwen3-moe").string(), "tiny-qwen3-moe-fused"},
                        Case{model("tiny-glm4-moe"), "tiny-glm4-moe-fused"}, Case{model("tiny-glm4-moe-noqknorm"), "tiny-glm4-moe-noqknorm-fused"}}) {
    CAPTURE(c.reference);
    fs::path out = scratch / c.reference;
    REQUIRE(run_moeforge({"convert", c.source, out.string(), "--layout", "fused"}).status == 0);
    auto want = nlohmann::json::parse(read_text(family_model(c.reference + "/tensors.json")))["tensors"];
    moeforge::SafetensorsFile mine(out / "model.safetensors");
    CHECK(mine.tensors().size() == want.size());
    for (const auto& t : mine.tensors()) {
      CAPTURE(t.name);
      REQUIRE(want.contains(t.name));
      CHECK(want[t.name]["shape"].get<moeforge::Shape>() == t.shape);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(mine.data(t))));
      CHECK(want[t.name]["fnv1a64"] == std::string(hex));
    }
  }
}

TEST_CASE("families: malformed inputs give one clear error and write nothing") {
  ScratchDir scratch("families-bad");
  auto fails = [&](const std::vector<std::string>& args, const std::string& text) {
    CAPTURE(text);
    RunResult r = run_moeforge(args);
    CHECK(r.status != 0);
    CHECK(r.err.find(text) != std::string::npos);
    CHECK(r.err_lines() == 1);
  };
  std::string out = (scratch / "out").string();
  fs::path no_keys = edited_copy(scratch, "tiny-glm4-moe", [](nlohmann::json& c) { c.erase("n_group"); c.erase("topk_group"); });
  fails({"eval", no_keys.string(), "--bytes", corpus()}, "missing: n_group, topk_group");
  fs::path axis = edited_copy(scratch, "tiny-gpt-oss", [](nlohmann::json& c) { c["num_local_experts"] = 3; });
  fails({"observe", axis.string(), "--bytes", corpus(), "--out", out + ".st"}, "the fused expert axis holds 4 experts");
  // MXFP4 scales of down_proj stored [E, I/32, H] instead of [E, H, I/32]: same bytes, wrong shape.
  fs::path mx = scratch / "mx";
  fs::create_directories(mx);
  fs::copy_file(family_model("tiny-gpt-oss-mxfp4") / "config.json", mx / "config.json");
  std::string bytes = read_text(family_model("tiny-gpt-oss-mxfp4") / "model.safetensors");
  const std::string from = R"("model.layers.0.mlp.experts.down_proj_scales":{"dtype":"U8","shape":[4,32,2])";
  size_t at = bytes.find(from);
  REQUIRE(at != std::string::npos);
  bytes.replace(at + from.size() - 8, 8, "[4,2,32]");
  write_bytes(mx / "model.safetensors", bytes);
  fails({"eval", mx.string(), "--bytes", corpus()}, "MXFP4 blocks are [experts, rows, columns / 32, 16]");
  fs::path fused_axis = edited_copy(scratch, "tiny-deepseek-v3-yarn-fused", [](nlohmann::json& c) { c["n_routed_experts"] = 4; c["n_group"] = 2; });
  fails({"eval", fused_axis.string(), "--bytes", corpus()}, "the fused expert axis holds 8 experts");
  fails({"prune", model("tiny-gpt-oss"), out, "--keep", "2", "--criterion", "random", "--layout", "per-expert"}, "has no choice of expert layout");
  fails({"merge-experts", model("tiny-gpt-oss"), out, "--groups", "2", "--uniform-weights", "--method", "average"}, "pass --groups-file");
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out + ".st"));
}
