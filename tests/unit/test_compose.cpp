// BTX composition and upcycling: tensor-level exactness (experts bit-exact, means computed
// independently), function-level invariants against the golden logits, configs and tensor names
// exactly those of the Hugging Face MoE fixtures, router rows, and clear errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "formats/sharded_writer.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/compose.hpp"
#include "merge/tensor_producers.hpp"
#include "merge/upcycle.hpp"
#include "engine/engine.hpp"
#include "engine/evaluation.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDomains = {"en", "py", "de", "c"};

fs::path btx(const std::string& name) { return test::fixture("models/btx-bytes/" + name); }

bool bits_equal(const TensorInfo& a, const TensorInfo& b) {
  auto x = a.file->data(a), y = b.file->data(b);
  return a.dtype == b.dtype && x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0;
}

// A copy of a dense model with seeded noise on every non-FFN tensor, so averages are not trivial.
void noisy_copy(const fs::path& in, const fs::path& out, uint64_t seed) {
  Checkpoint c(in);
  Plan p;
  p.config = c.config();
  for (const TensorInfo* t : c.tensors()) {
    if (t->name.find(".mlp.") != std::string::npos) {
      p.tensors.push_back(copy_tensor(*t, t->name, t->dtype));
    } else {
      OutputTensor f32 = copy_tensor(*t, t->name, DType::kF32);
      p.tensors.push_back(with_noise(std::move(f32), t->dtype, 0.01, seed));
    }
  }
  write_checkpoint(p, out, {});
}

double bits_per_byte(const Checkpoint& model, const std::string& domain) {
  DataOptions o;
  o.seq_len = 128;
  o.vocab = 256;
  DataSet data = combine({load_data(test::fixture("corpora/" + domain + "/eval.txt"), DataKind::kBytes, o)});
  return evaluate(Engine(model), data).back().bits_per_token();
}

struct Logits : Observer {
  std::vector<std::vector<float>> windows;
  std::mutex m;
  bool wants_logits() const override { return true; }
  void logits(size_t w, const float* l, int64_t n, int64_t v) override {
    std::lock_guard<std::mutex> lock(m);
    if (windows.size() <= w) windows.resize(w + 1);
    windows[w].assign(l, l + n * v);
  }
};

// Max |logits(model) − golden logits| on the fixture's golden inputs.
double golden_logit_diff(const Checkpoint& model, const std::string& golden_dir) {
  SafetensorsFile g(test::fixture("models/" + golden_dir + "/golden.safetensors"));
  std::vector<double> ids, want;
  int64_t rows = 0, cols = 0;
  for (const auto& t : g.tensors()) {
    if (t.name == "input_ids") {
      ids = read_f64(t);
      rows = t.shape[0];
      cols = t.shape[1];
    }
    if (t.name == "logits") want = read_f64(t);
  }
  Batch b;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> row;
    for (int64_t c = 0; c < cols; ++c) row.push_back(static_cast<int32_t>(ids[r * cols + c]));
    b.add_window(row.data(), cols);
  }
  Logits obs;
  Engine(model).run(b, obs);
  double diff = 0;
  size_t i = 0;
  for (const auto& w : obs.windows)
    for (float v : w) diff = std::max(diff, std::fabs(v - want[i++]));
  return diff;
}

std::set<std::string> config_keys(const nlohmann::json& c) {
  std::set<std::string> k;
  for (const auto& [key, v] : c.items()) k.insert(key);
  return k;
}

}  // namespace

TEST_CASE("compose: experts are bit-exact copies, shared tensors the independently computed mean") {
  test::ScratchDir dir("compose");
  std::vector<std::unique_ptr<Checkpoint>> noisy;
  for (size_t i = 0; i < 4; ++i) {
    noisy_copy(btx("expert-" + kDomains[i]), dir / kDomains[i], 100 + i);
    noisy.push_back(std::make_unique<Checkpoint>(dir / kDomains[i]));
  }
  for (auto mode : {SharedWeights::kUniform, SharedWeights::kWeighted}) {
    ComposeSpec s;
    for (auto& n : noisy) s.experts.push_back(n.get());
    s.shared = mode;
    s.weights = {0.4, 0.3, 0.2, 0.1};
    s.router.method = RouterMethod::kZero;
    fs::path out = dir / (mode == SharedWeights::kUniform ? "uniform" : "weighted");
    write_checkpoint(plan_compose(s), out, {});
    Checkpoint moe(out);
    for (int l = 0; l < 2; ++l)
      for (int e = 0; e < 4; ++e)
        for (auto [w, src] : {std::pair{"w1", "gate_proj"}, {"w3", "up_proj"}, {"w2", "down_proj"}}) {
          std::string name = "model.layers." + std::to_string(l) + ".block_sparse_moe.experts." + std::to_string(e) + "." + w + ".weight";
          CHECK(bits_equal(moe.require_tensor(name), noisy[e]->require_tensor("model.layers." + std::to_string(l) + ".mlp." + src + ".weight")));
        }
    double weights[4] = {0.25, 0.25, 0.25, 0.25};
    if (mode == SharedWeights::kWeighted)  // normalised to sum 1, as documented
      for (int e = 0; e < 4; ++e) weights[e] = s.weights[e] / (0.4 + 0.3 + 0.2 + 0.1);
    int checked = 0;
    for (const TensorInfo* t : noisy[0]->tensors()) {
      if (t->name.find(".mlp.") != std::string::npos) continue;
      std::vector<double> sum(static_cast<size_t>(t->numel()), 0.0);
      for (int e = 0; e < 4; ++e) {
        std::vector<double> v = read_f64(noisy[e]->require_tensor(t->name));
        for (size_t i = 0; i < v.size(); ++i) sum[i] += weights[e] * v[i];
      }
      std::vector<double> got = read_f64(moe.require_tensor(t->name));
      bool exact = true;
      for (size_t i = 0; i < sum.size(); ++i) exact = exact && static_cast<float>(got[i]) == static_cast<float>(sum[i]);
      CHECK_MESSAGE(exact, t->name);
      ++checked;
    }
    CHECK(checked == 3 + 2 * 6);  // embed, norm, lm_head; per layer q, k, v, o and two norms
  }
  // --shared base copies the base bit for bit.
  ComposeSpec s;
  for (auto& n : noisy) s.experts.push_back(n.get());
  Checkpoint base(btx("base"));
  s.base = &base;
  s.shared = SharedWeights::kBase;
  s.router.method = RouterMethod::kZero;
  write_checkpoint(plan_compose(s), dir / "based", {});
  Checkpoint moe(dir / "based");
  CHECK(bits_equal(moe.require_tensor("model.layers.1.self_attn.q_proj.weight"), base.require_tensor("model.layers.1.self_attn.q_proj.weight")));
  CHECK(bits_equal(moe.require_tensor("lm_head.weight"), base.require_tensor("lm_head.weight")));
}

// "slow": whole-recipe numerics, run in the release build only (minutes under the sanitizers).
TEST_CASE("compose: the BTX centroid recipe reproduces the reference merge and its router rows" * doctest::test_suite("slow")) {
  std::vector<std::unique_ptr<Checkpoint>> experts;
  ComposeSpec s;
  DataOptions o;
  o.seq_len = 128;
  o.vocab = 256;
  for (const auto& d : kDomains) {
    experts.push_back(std::make_unique<Checkpoint>(btx("expert-" + d)));
    s.experts.push_back(experts.back().get());
    s.router.positive.push_back(load_data(test::fixture("corpora/" + d + "/calib.txt"), DataKind::kBytes, o));
  }
  s.router.method = RouterMethod::kCentroid;
  test::ScratchDir dir("centroid");
  write_checkpoint(plan_compose(s), dir / "moe", {});
  Checkpoint moe(dir / "moe"), ref(btx("merged-mixtral-top2"));
  SafetensorsFile expected(btx("expected_windows.safetensors"));
  for (const auto& t : expected.tensors()) {
    if (t.name.rfind("router/", 0) != 0) continue;
    std::vector<double> want = read_f64(t), got = read_f64(moe.require_tensor(t.name.substr(7)));
    double diff = 0;
    for (size_t i = 0; i < want.size(); ++i) diff = std::max(diff, std::fabs(want[i] - got[i]));
    CHECK(diff <= 1e-5);
  }
  CHECK(config_keys(moe.config()) == config_keys(ref.config()));
  CHECK(moe.config()["rope_theta"] == 10000.0);
  CHECK(moe.config()["rms_norm_eps"] == 1e-6);
  auto expected_bpb = nlohmann::json::parse(test::read_text(btx("expected.json")));
  for (const auto& d : {std::string("en"), std::string("c")})
    CHECK(std::fabs(bits_per_byte(moe, d) - expected_bpb["bits_per_byte"]["merged-mixtral-top2"][d].get<double>()) <= 1e-4);
}

TEST_CASE("compose: a single-expert MoE computes exactly its expert") {
  Checkpoint py(btx("expert-py"));
  ComposeSpec s;
  s.experts = {&py};
  s.router.method = RouterMethod::kRandom;
  test::ScratchDir dir("single");
  write_checkpoint(plan_compose(s), dir / "moe", {});
  Checkpoint moe(dir / "moe");
  CHECK(moe.config()["num_local_experts"] == 1);
  CHECK(moe.config()["num_experts_per_tok"] == 1);
  CHECK(std::fabs(bits_per_byte(moe, "py") - bits_per_byte(py, "py")) <= 1e-6);
}

TEST_CASE("compose and upcycle write exactly the config keys and tensor names of the HF MoE fixtures") {
  struct Case {
    const char* dense;
    const char* arch;
    const char* fixture;
  };
  for (auto c : {Case{"tiny-llama", "mixtral", "tiny-mixtral"}, Case{"tiny-qwen2", "qwen2_moe", "tiny-qwen2-moe"},
                 Case{"tiny-qwen3", "qwen3_moe", "tiny-qwen3-moe"}, Case{"tiny-llama", "olmoe", "tiny-olmoe"}}) {
    CAPTURE(c.arch);
    Checkpoint dense(test::fixture(std::string("models/") + c.dense));
    ComposeSpec s;
    for (int i = 0; i < 8; ++i) s.experts.push_back(&dense);
    s.base = &dense;
    s.output_arch = c.arch;
    Plan p = plan_compose(s);
    Checkpoint ref(test::fixture(std::string("models/") + c.fixture));
    CHECK(config_keys(p.config) == config_keys(ref.config()));
    std::set<std::string> ours, theirs;
    for (const auto& t : p.tensors) ours.insert(t.name);
    for (const TensorInfo* t : ref.tensors()) theirs.insert(t->name);
    if (!dense.config()["tie_word_embeddings"].get<bool>()) CHECK(ours == theirs);
    else {
      theirs.erase("lm_head.weight");  // tied input: lm_head stays tied
      CHECK(ours == theirs);
    }
  }
}

TEST_CASE("upcycling reproduces the dense model's golden logits (atol 1e-4; 3e-4 for stories260k)") {
  struct Case {
    const char* model;
    int copies, granularity;
    double atol;
  };
  test::ScratchDir dir("upcycle");
  int n = 0;
  for (auto c : {Case{"tiny-llama", 4, 1, 1e-4}, Case{"tiny-llama", 2, 2, 1e-4}, Case{"tiny-llama", 2, 3, 1e-4},
                 Case{"tiny-mistral", 3, 1, 1e-4}, Case{"tiny-qwen2", 4, 2, 1e-4}, Case{"tiny-qwen3", 4, 1, 1e-4},
                 Case{"stories260k", 4, 1, 3e-4}}) {
    CAPTURE(c.model);
    CAPTURE(c.granularity);
    Checkpoint dense(test::fixture(std::string("models/") + c.model));
    UpcycleSpec s;
    s.model = &dense;
    s.copies = c.copies;
    s.granularity = c.granularity;
    s.router.method = RouterMethod::kRandom;
    s.router.std = 0.5;  // a strong random router: exactness must not depend on the routing
    fs::path out = dir / std::to_string(n++);
    write_checkpoint(plan_upcycle(s), out, {});
    Checkpoint moe(out);
    CHECK(moe.config()["num_experts_per_tok"] == 2 * c.granularity);
    CHECK(golden_logit_diff(moe, c.model) <= c.atol);
  }
}

TEST_CASE("seeded randomness: same seed, same bytes; noise breaks the symmetry") {
  Checkpoint dense(test::fixture("models/tiny-llama"));
  UpcycleSpec s;
  s.model = &dense;
  s.copies = 2;
  s.noise = 0.01;
  s.seed = 7;
  test::ScratchDir dir("seed");
  WriteOptions one, many;
  one.threads = 1;
  many.threads = 4;
  many.chunk_bytes = 100;
  write_checkpoint(plan_upcycle(s), dir / "a", one);
  write_checkpoint(plan_upcycle(s), dir / "b", many);
  CHECK(test::read_text(dir / "a/model.safetensors") == test::read_text(dir / "b/model.safetensors"));
  Checkpoint a(dir / "a");
  auto e0 = read_f64(a.require_tensor("model.layers.0.block_sparse_moe.experts.0.w1.weight"));
  auto e1 = read_f64(a.require_tensor("model.layers.0.block_sparse_moe.experts.1.w1.weight"));
  auto src = read_f64(dense.require_tensor("model.layers.0.mlp.gate_proj.weight"));
  double d01 = 0, var = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    d01 = std::max(d01, std::fabs(e0[i] - e1[i]));
    var += (e0[i] - src[i]) * (e0[i] - src[i]);
  }
  CHECK(d01 > 0);
  CHECK(std::sqrt(var / static_cast<double>(src.size())) == doctest::Approx(0.01).epsilon(0.05));
  auto router = read_f64(a.require_tensor("model.layers.2.block_sparse_moe.gate.weight"));
  double ss = 0;
  for (double v : router) ss += v * v;
  CHECK(std::sqrt(ss / static_cast<double>(router.size())) == doctest::Approx(0.02).epsilon(0.25));
}

TEST_CASE("embed and hidden routers") {
  Checkpoint en(btx("expert-en")), py(btx("expert-py"));
  DataOptions o;
  o.seq_len = 128;
  o.vocab = 256;
  o.max_tokens = 4096;
  DataFile den = load_data(test::fixture("corpora/en/calib.txt"), DataKind::kBytes, o);
  DataFile dpy = load_data(test::fixture("corpora/py/calib.txt"), DataKind::kBytes, o);
  RouterInit init;
  init.positive = {den, dpy};
  RouterModels models{{&en, &py}, &en, &en};
  std::vector<std::string> warnings;
  std::vector<bool> moe = {true, true};
  init.method = RouterMethod::kEmbed;
  auto embed = init_routers(init, models, 2, 2, 64, moe, &warnings);
  // Independent: mean embedding row of the English bytes, normalised.
  auto table = read_f64(en.require_tensor("model.embed_tokens.weight"));
  std::vector<double> mean(64, 0.0);
  for (int32_t id : den.batch.tokens)
    for (int d = 0; d < 64; ++d) mean[d] += table[id * 64 + d] / static_cast<double>(den.batch.tokens.size());
  double norm = 0;
  for (double v : mean) norm += v * v;
  for (int d = 0; d < 64; ++d) CHECK(embed[1][d] == doctest::Approx(mean[d] / std::sqrt(norm)).epsilon(1e-9));
  CHECK(embed[0] == embed[1]);  // the same rows in every layer
  // hidden with the expert itself as base equals that expert's centroid; negatives subtract.
  init.method = RouterMethod::kCentroid;
  auto centroid = init_routers(init, models, 2, 2, 64, moe, &warnings);
  init.method = RouterMethod::kHidden;
  auto hidden = init_routers(init, models, 2, 2, 64, moe, &warnings);
  for (int d = 0; d < 64; ++d) CHECK(hidden[1][d] == centroid[1][d]);  // row 0 = en through en
  init.negative = {dpy};
  auto contrast = init_routers(init, models, 2, 2, 64, moe, &warnings);
  double self = 0;
  for (int d = 64; d < 128; ++d) self += std::fabs(contrast[1][d]);
  CHECK(self < 1e-12);  // py minus py is zero: its row stays zero, with a warning
  CHECK(!warnings.empty());
}

TEST_CASE("inputs that do not fit are refused with both files named") {
  Checkpoint llama(test::fixture("models/tiny-llama")), mistral(test::fixture("models/tiny-mistral")), en(btx("expert-en")),
      mixtral(test::fixture("models/tiny-mixtral"));
  ComposeSpec s;
  s.experts = {&llama, &mistral};
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("do not fit together: model_type llama vs mistral"), MismatchError);
  s.experts = {&en, &llama};
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("num_hidden_layers 2 vs 3"), MismatchError);
  s.experts = {&mixtral};
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("is a mixtral MoE"), UnsupportedError);
  s.experts = {&llama};
  s.output_arch = "qwen3_moe";
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("a llama model cannot become qwen3_moe"), UnsupportedError);
  s.output_arch = "";
  s.router.method = RouterMethod::kCentroid;
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("needs one data file per expert"), UsageError);
  s.router.method = RouterMethod::kZero;
  s.shared = SharedWeights::kWeighted;
  s.weights = {1, 2};
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("2 values for 1 experts"), UsageError);
}

TEST_CASE("--pad-experts zero-pads narrower FFNs") {
  test::ScratchDir dir("pad");
  Checkpoint en(btx("expert-en")), py(btx("expert-py"));
  // A narrower expert: the first 100 of py's 172 neurons.
  Plan narrow;
  narrow.config = py.config();
  narrow.config["intermediate_size"] = 100;
  for (const TensorInfo* t : py.tensors()) {
    if (t->name.find("gate_proj") != std::string::npos || t->name.find("up_proj") != std::string::npos)
      narrow.tensors.push_back(row_slice(*t, 0, 100, 1.0, t->name, t->dtype));
    else if (t->name.find("down_proj") != std::string::npos)
      narrow.tensors.push_back(col_slice(*t, 0, 100, 1.0, t->name, t->dtype));
    else
      narrow.tensors.push_back(copy_tensor(*t, t->name, t->dtype));
  }
  write_checkpoint(narrow, dir / "narrow", {});
  Checkpoint small(dir / "narrow");
  ComposeSpec s;
  s.experts = {&en, &small};
  s.router.method = RouterMethod::kZero;
  CHECK_THROWS_WITH_AS(plan_compose(s), doctest::Contains("intermediate_size (FFN width) 172 vs 100"), MismatchError);
  s.pad_experts = true;
  write_checkpoint(plan_compose(s), dir / "moe", {});
  Checkpoint moe(dir / "moe");
  auto down = read_f64(moe.require_tensor("model.layers.0.block_sparse_moe.experts.1.w2.weight"));
  auto src = read_f64(small.require_tensor("model.layers.0.mlp.down_proj.weight"));
  bool ok = true;
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 172; ++c) ok = ok && down[r * 172 + c] == (c < 100 ? src[r * 100 + c] : 0.0);
  CHECK(ok);
  auto gate = read_f64(moe.require_tensor("model.layers.0.block_sparse_moe.experts.1.w1.weight"));
  for (size_t i = 100 * 64; i < gate.size(); ++i) REQUIRE(gate[i] == 0.0);
}
