// Expert pruning: keeping one expert of the composed BTX MoE reproduces that expert; kept tensors
// and router rows are bit-exact; reports equal the statistics; selection rules and bad requests.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "compress/prune.hpp"
#include "compress/reduced_moe.hpp"
#include "core/error.hpp"
#include "formats/sharded_writer.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/compose.hpp"
#include "engine/engine.hpp"
#include "engine/evaluation.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDomains = {"en", "py", "de", "c"};

fs::path btx(const std::string& name) { return test::fixture("models/btx-bytes/" + name); }

DataFile bytes_file(const std::string& domain, const std::string& kind, int64_t max_tokens = 0) {
  DataOptions o;
  o.seq_len = 128;
  o.vocab = 256;
  o.max_tokens = max_tokens;
  return load_data(test::fixture("corpora/" + domain + "/" + kind + ".txt"), DataKind::kBytes, o);
}

double bpb(const Checkpoint& model, const std::string& domain, int64_t max_tokens = 0) {
  return evaluate(Engine(model), combine({bytes_file(domain, "eval", max_tokens)})).back().bits_per_token();
}

// The composed BTX MoE with centroid routers, written once.
const fs::path& composed() {
  static test::ScratchDir dir("btx-moe");
  static bool done = false;
  if (!done) {
    std::vector<std::unique_ptr<Checkpoint>> experts;
    ComposeSpec s;
    for (const auto& d : kDomains) {
      experts.push_back(std::make_unique<Checkpoint>(btx("expert-" + d)));
      s.experts.push_back(experts.back().get());
    }
    s.router.method = RouterMethod::kCentroid;  // domain-aware routing, as the BTX recipe
    for (const auto& d : kDomains) s.router.positive.push_back(bytes_file(d, "calib", 16384));
    write_checkpoint(plan_compose(s), dir / "moe", {});
    done = true;
  }
  static fs::path p = dir / "moe";
  return p;
}

bool same_bytes(const TensorInfo& a, const TensorInfo& b) {
  auto x = a.file->data(a), y = b.file->data(b);
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0;
}

}  // namespace

// "slow": whole-recipe numerics, run in the release build only (minutes under the sanitizers).
TEST_CASE("pruning the composed BTX MoE to expert d reproduces expert d's bits per byte" * doctest::test_suite("slow")) {
  Checkpoint moe(composed());
  ModelConfig c = resolve_config(moe.config(), "config.json");
  test::ScratchDir dir("prune1");
  for (int d = 0; d < 4; ++d) {
    CAPTURE(kDomains[d]);
    SelectionOptions o;
    o.keep_list = {{0, {d}}, {1, {d}}};
    Selection sel = select_experts(c, nullptr, nullptr, o);
    fs::path out = dir / kDomains[d];
    write_checkpoint(plan_prune(moe, c, sel, nullptr, std::nullopt).plan, out, {});
    Checkpoint pruned(out);
    CHECK(pruned.config()["num_local_experts"] == 1);
    CHECK(pruned.config()["num_experts_per_tok"] == 1);
    Checkpoint expert(btx("expert-" + kDomains[d]));
    for (const auto& domain : {kDomains[d], std::string("en")}) CHECK(std::fabs(bpb(pruned, domain) - bpb(expert, domain)) <= 1e-6);
  }
}

// "slow": four engine passes over the composed MoE, numerics only; release build only.
TEST_CASE("REAP on a domain's calibration data keeps that domain's expert" * doctest::test_suite("slow")) {
  Checkpoint moe(composed());
  ModelConfig c = resolve_config(moe.config(), "config.json");
  for (int d = 0; d < 4; ++d) {
    CAPTURE(kDomains[d]);
    CalibrationStats stats = observe(Engine(moe), combine({bytes_file(kDomains[d], "calib", 8192)}), false);
    FileStats merged = stats.merged();
    Scores scores = score_experts(Criterion::kReap, &merged, c, 0);
    SelectionOptions o;
    o.keep = 1;
    Selection sel = select_experts(c, &scores, &merged, o);
    CHECK(sel.kept[1] == std::vector<int>{d});  // the last layer routes by domain most clearly
  }
}

TEST_CASE("pruned fixture MoEs: kept experts and router rows bit-exact, config updated, still runs") {
  test::ScratchDir dir("prune-fixtures");
  for (const char* name : {"tiny-mixtral", "tiny-qwen2-moe", "tiny-qwen3-moe", "tiny-olmoe"}) {
    CAPTURE(name);
    Checkpoint moe(test::fixture(std::string("models/") + name));
    ModelConfig c = resolve_config(moe.config(), "config.json");
    SelectionOptions o;
    for (int l = 0; l < 3; ++l) o.drop_list[l] = {1, 4, l + 5};
    Selection sel = select_experts(c, nullptr, nullptr, o);
    fs::path out = dir / name;
    write_checkpoint(plan_prune(moe, c, sel, nullptr, std::nullopt).plan, out, {});
    Checkpoint pruned(out);
    ModelConfig pc = resolve_config(pruned.config(), "pruned config.json");
    CHECK(pc.n_experts == 5);
    CHECK(pc.top_k == 2);
    for (int l = 0; l < 3; ++l) {
      for (size_t j = 0; j < sel.kept[l].size(); ++j)
        for (Proj p : {Proj::kGate, Proj::kUp, Proj::kDown})
          CHECK(same_bytes(pruned.require_tensor(expand(find_pattern(*c.family, Role::kExpert, p)->pattern, l, static_cast<int>(j))),
                           moe.require_tensor(expand(find_pattern(*c.family, Role::kExpert, p)->pattern, l, sel.kept[l][j]))));
      std::string router = expand(find_pattern(*c.family, Role::kRouter)->pattern, l);
      auto in = read_f64(moe.require_tensor(router)), got = read_f64(pruned.require_tensor(router));
      for (size_t j = 0; j < sel.kept[l].size(); ++j)
        for (int h = 0; h < 64; ++h) REQUIRE(got[j * 64 + h] == in[sel.kept[l][j] * 64 + h]);
    }
    if (std::string(name) == "tiny-qwen2-moe")
      CHECK(same_bytes(pruned.require_tensor("model.layers.1.mlp.shared_expert.up_proj.weight"),
                       moe.require_tensor("model.layers.1.mlp.shared_expert.up_proj.weight")));
    // Dropping experts changes what the model computes; a keep-list of every expert changes nothing.
    // 2048 tokens are enough to tell (and keep the sanitizer run short).
    double b = bpb(pruned, "en", 2048), original = bpb(moe, "en", 2048);
    CHECK(b != original);
    SelectionOptions all;
    for (int l = 0; l < 3; ++l) all.keep_list[l] = {0, 1, 2, 3, 4, 5, 6, 7};
    fs::path same = dir / (std::string(name) + "-all");
    write_checkpoint(plan_prune(moe, c, select_experts(c, nullptr, nullptr, all), nullptr, std::nullopt).plan, same, {});
    CHECK(bpb(Checkpoint(same), "en", 2048) == original);
  }
}

TEST_CASE("selection: budgets, ties, protection, super experts, global ranking") {
  nlohmann::json cfg = {{"model_type", "mixtral"}, {"num_hidden_layers", 2}, {"hidden_size", 8}, {"vocab_size", 10},
                        {"num_attention_heads", 2}, {"num_local_experts", 4}, {"num_experts_per_tok", 2}, {"intermediate_size", 6}};
  ModelConfig c = resolve_config(cfg, "c.json");
  Scores scores = {{4, 1, 3, 2}, {1, 1, 9, 0}};
  SelectionOptions o;
  o.ratio = 0.5;
  Selection s = select_experts(c, &scores, nullptr, o);
  CHECK(s.kept[0] == std::vector<int>{0, 2});
  CHECK(s.kept[1] == std::vector<int>{0, 2});  // tie between 0 and 1: the lower index stays
  o.ratio = 0.3;  // floor(4 × 0.3) = 1 dropped
  CHECK(select_experts(c, &scores, nullptr, o).kept[0] == std::vector<int>{0, 2, 3});
  o.ratio.reset();
  o.keep = 2;
  o.protect = {{0, {1}}};
  CHECK(select_experts(c, &scores, nullptr, o).kept[0] == std::vector<int>{0, 1});
  o.protect.clear();
  o.global = true;  // global top 4 of all 8 with a floor of 2 per layer: layer 1 keeps 2, 9; layer 0 keeps 4, 3
  s = select_experts(c, &scores, nullptr, o);
  CHECK(s.kept[0] == std::vector<int>{0, 2});
  CHECK(s.kept[1] == std::vector<int>{0, 2});
  o.keep = 3;  // global top 6 after the floors {4, 3} and {9, 1}: 2 and then 1 (layer 0 wins the tie by order)
  s = select_experts(c, &scores, nullptr, o);
  CHECK(s.kept[0] == std::vector<int>{0, 1, 2, 3});
  CHECK(s.kept[1] == std::vector<int>{0, 2});
  o.global = false;
  o.keep = 5;
  CHECK_THROWS_WITH_AS(select_experts(c, &scores, nullptr, o), doctest::Contains("must be in [1, 4]"), UsageError);
  o.keep.reset();
  o.ratio = 1.0;
  CHECK_THROWS_WITH_AS(select_experts(c, &scores, nullptr, o), doctest::Contains("--ratio must be in (0, 1)"), UsageError);
  // Super experts: one expert's max activation towers over the rest.
  FileStats st;
  st.experts.resize(2);
  for (auto& e : st.experts) e.init(4, 8, false);
  st.experts[1].max_act << 1, 1, 1, 50;
  st.experts[0].max_act << 1, 2, 1, 1;
  auto super = super_experts(c, st);
  CHECK(super[1][3]);
  CHECK_FALSE(super[0][1]);
}

TEST_CASE("global ranking that leaves layers uneven is refused: transformers needs one count") {
  Checkpoint moe(test::fixture("models/tiny-mixtral"));
  ModelConfig c = resolve_config(moe.config(), "config.json");
  Scores skewed(3);
  for (int l = 0; l < 3; ++l)
    for (int e = 0; e < 8; ++e) skewed[l].push_back(l == 0 ? 10.0 + e : e * 0.1);
  SelectionOptions o;
  o.keep = 4;
  o.global = true;
  Selection s = select_experts(c, &skewed, nullptr, o);
  CHECK_THROWS_WITH_AS(plan_prune(moe, c, s, &skewed, std::nullopt), doctest::Contains("one expert count for every layer"), UsageError);
}

TEST_CASE("layer lists are checked against the model") {
  Checkpoint moe(test::fixture("models/tiny-mixtral"));
  ModelConfig c = resolve_config(moe.config(), "config.json");
  test::ScratchDir dir("lists");
  test::write_bytes(dir / "a.json", R"({"7": [1]})");
  CHECK_THROWS_WITH_AS(read_layer_experts(dir / "a.json", c), doctest::Contains("layer \"7\" does not exist"), UsageError);
  test::write_bytes(dir / "b.json", R"({"1": [8]})");
  CHECK_THROWS_WITH_AS(read_layer_experts(dir / "b.json", c), doctest::Contains("expert 8 does not exist"), UsageError);
  test::write_bytes(dir / "c.json", R"([1, 2])");
  CHECK_THROWS_WITH_AS(read_layer_experts(dir / "c.json", c), doctest::Contains("expected a JSON object"), UsageError);
}

TEST_CASE("DeepSeek-V3 group-limited routing after reduction keeps groups only when each keeps two or more") {
  ModelConfig c;
  c.n_experts = 16;
  c.n_group = 4;
  c.topk_group = 2;
  c.top_k = 2;
  c.moe_layer = {false, true, true};
  auto keep = [](std::vector<int> experts) {
    std::vector<OutputExpert> layer;
    for (int e : experts) layer.push_back({{e}, {1.0}});
    return layer;
  };
  // Groups of 4: {0-3} {4-7} {8-11} {12-15}.
  std::vector<std::vector<OutputExpert>> even = {{}, keep({0, 1, 4, 5, 8, 9, 12, 13}), keep({2, 3, 6, 7, 10, 11, 14, 15})};
  auto g = reduced_group_limit(c, even);
  CHECK(g.n_group == 4);
  CHECK(g.topk_group == 2);
  CHECK(g.note.empty());
  // One expert per group: a group score (sum of its best two) is undefined.
  g = reduced_group_limit(c, {{}, keep({0, 4, 8, 12}), keep({1, 5, 9, 13})});
  CHECK(g.n_group == 1);
  CHECK(g.topk_group == 1);
  CHECK(g.note.find("at least 2") != std::string::npos);
  // Whole groups dropped: the others stay groups.
  g = reduced_group_limit(c, {{}, keep({0, 1, 2, 3, 8, 9, 10, 11}), keep({4, 5, 6, 7, 12, 13, 14, 15})});
  CHECK(g.n_group == 2);
  CHECK(g.topk_group == 2);
  // Uneven in one layer: renumbered groups would mix the original ones.
  g = reduced_group_limit(c, {{}, keep({0, 1, 4, 5, 8, 9, 12, 13}), keep({0, 1, 2, 3, 4, 5, 8, 9})});
  CHECK(g.n_group == 1);
  CHECK(g.note.find("not spread evenly") != std::string::npos);
  // A merged expert counts in its first member's group.
  std::vector<OutputExpert> merged = {{{0, 5}, {0.5, 0.5}}, {{1, 2}, {0.5, 0.5}}, {{4, 6}, {0.5, 0.5}}, {{7, 3}, {0.5, 0.5}},
                                      {{8, 9}, {0.5, 0.5}}, {{10, 11}, {0.5, 0.5}}, {{12, 13}, {0.5, 0.5}}, {{14, 15}, {0.5, 0.5}}};
  g = reduced_group_limit(c, {{}, merged, merged});
  CHECK(g.n_group == 4);
}
