// End to end: observe --shard and `stats merge` through the binary (shards merged equal the whole
// run; refusals), several --stats files for prune, and the MPI suite: moeforge-mpi under
// mpirun -np 2 equals one process for observe, eval and prune, and a failing rank ends the job.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "engine/stats_file.hpp"
#include "engine/stats_tensors.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

const std::string kMoe = fixture("models/btx-bytes/merged-mixtral-top2").string();
std::string calib(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

std::vector<std::string> observe_args(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"observe", kMoe, "--bytes", calib("en"), calib("de"), "--seq-len", "128", "--max-tokens", "16384", "--out", out, "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Three files of 3 segments each: 2 ranks split the second file between them.
std::vector<std::string> observe3_args(const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"observe", kMoe, "--bytes", calib("en"), calib("de"), calib("py"), "--seq-len", "128", "--max-tokens", "12288", "--out", out, "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Largest |a − b| / max |b| over the tensors of two statistics files; counts and maxima must be equal.
double compare_stats(const std::string& a_path, const std::string& b_path) {
  StatsTensors a = read_stats_tensors(a_path), b = read_stats_tensors(b_path);
  REQUIRE(a.tensors.size() == b.tensors.size());
  double worst = 0;
  for (const auto& tb : b.tensors) {
    CAPTURE(tb.name);
    const StatTensor* ta = a.find(tb.name);
    REQUIRE(ta != nullptr);
    REQUIRE(ta->values.size() == tb.values.size());
    double scale = 0, diff = 0;
    for (size_t i = 0; i < tb.values.size(); ++i) {
      scale = std::max(scale, std::fabs(tb.values[i]));
      diff = std::max(diff, std::fabs(ta->values[i] - tb.values[i]));
    }
    std::string stat = tb.name.substr(tb.name.rfind('.') + 1);
    if (stat == "count" || stat == "top1_count" || stat == "coactivation" || stat == "tokens" || stat == "max_act") CHECK(diff == 0);
    if (scale > 0) worst = std::max(worst, diff / scale);
  }
  return worst;
}

}  // namespace

TEST_CASE("observe --shard 1..5 merged by `stats merge` equals one observe (1e-9 per tensor; counts and maxima exact)") {
  ScratchDir dir("shards");
  std::string whole = (dir / "whole.st").string();
  REQUIRE(run_moeforge(observe_args(whole, {"--all-experts"})).status == 0);
  std::vector<std::string> merge = {"stats", "merge"};
  for (int k = 5; k >= 1; --k) {  // any order on the command line
    std::string shard = (dir / ("s" + std::to_string(k) + ".st")).string();
    auto r = run_moeforge(observe_args(shard, {"--all-experts", "--shard", std::to_string(k) + "/5"}));
    REQUIRE(r.status == 0);
    merge.push_back(shard);
  }
  std::string merged = (dir / "merged.st").string();
  merge.insert(merge.end(), {"--out", merged, "--json"});
  auto r = run_moeforge(merge);
  REQUIRE(r.status == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["files"][0]["tokens"] == 16384);
  CHECK(j["coverage"][0].get<std::string>().find("shard 5/5") != std::string::npos);
  double worst = compare_stats(merged, whole);
  MESSAGE("5 shards merged vs one observe: largest relative difference per tensor " << worst);
  CHECK(worst <= 1e-9);
  // The file records the shard: K, N, the data files with their SHA-256, model fingerprint, options.
  nlohmann::json run = read_stats_tensors(dir / "s2.st").description["run"];
  CHECK(run["datasets"][0]["pieces"][0]["shard"] == nlohmann::json{2, 5});
  CHECK(run["datasets"][0]["files"][0]["sha256"].get<std::string>().size() == 64);
  CHECK(run["model_fingerprint"].get<std::string>().size() == 64);
  CHECK(run["options"]["seq-len"] == 128);
  // Several --stats files are merged on the fly: prune decides as with the whole run.
  std::vector<std::string> prune = {"prune", kMoe, (dir / "p-shards").string(), "--keep", "2", "--report", (dir / "p-shards.json").string(), "--quiet", "--stats"};
  for (int k = 1; k <= 5; ++k) prune.push_back((dir / ("s" + std::to_string(k) + ".st")).string());
  REQUIRE(run_moeforge(prune).status == 0);
  REQUIRE(run_moeforge({"prune", kMoe, (dir / "p-whole").string(), "--keep", "2", "--report", (dir / "p-whole.json").string(), "--quiet", "--stats", whole}).status == 0);
  auto a = nlohmann::json::parse(read_text(dir / "p-shards.json")), b = nlohmann::json::parse(read_text(dir / "p-whole.json"));
  for (int l = 0; l < 2; ++l)
    for (int x = 0; x < 4; ++x) {
      CHECK(a["layers"][l]["experts"][x]["kept"] == b["layers"][l]["experts"][x]["kept"]);
      CHECK(a["layers"][l]["experts"][x]["score"].get<double>() == doctest::Approx(b["layers"][l]["experts"][x]["score"].get<double>()).epsilon(1e-12));
    }
  CHECK(run_moeforge({"diff", (dir / "p-shards").string(), (dir / "p-whole").string()}).status == 0);
}

TEST_CASE("stats merge refuses other models, other options, overlapping, duplicate and missing shards") {
  ScratchDir dir("merge-bad");
  auto observe = [&](const std::string& name, std::vector<std::string> extra, const std::string& model = kMoe) {
    std::string out = (dir / name).string();
    std::vector<std::string> a = {"observe", model, "--bytes", calib("en"), "--out", out, "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    for (const char* k : {"--seq-len", "--max-tokens"})
      if (std::find(a.begin(), a.end(), k) == a.end()) a.insert(a.end(), {k, std::string(k) == "--seq-len" ? "128" : "16384"});
    REQUIRE(run_moeforge(a).status == 0);
    return out;
  };
  std::string s13 = observe("s13", {"--shard", "1/3"}), s33 = observe("s33", {"--shard", "3/3"}), s12 = observe("s12", {"--shard", "1/2"}),
              s22 = observe("s22", {"--shard", "2/2"}), s23 = observe("s23", {"--shard", "2/3"}), seq64 = observe("seq64", {"--seq-len", "64", "--shard", "2/2"});
  // The same shape with other weights: the tiny Mixtral in float32 and in bf16.
  std::string f32 = observe("f32", {"--seq-len", "16", "--max-tokens", "64"}, fixture("models/tiny-mixtral").string()),
              bf16 = observe("bf16", {"--seq-len", "16", "--max-tokens", "64"}, fixture("models/tiny-mixtral-bf16").string());
  struct Case {
    std::vector<std::string> inputs;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{s13, s33}, "missing shards 2/3"},
      {{s13, s23, s13, s33}, "duplicate shard 1/3"},
      {{s13, s22, s23}, "overlap"},
      {{s12, seq64}, "different options (seq-len 128 vs 64)"},
  };
  cases.push_back({{f32, bf16}, "computed on different models"});
  cases.push_back({{s12, f32}, "different models or kinds"});
  std::string out = (dir / "out.st").string();
  for (const auto& c : cases) {
    std::vector<std::string> args = {"stats", "merge"};
    args.insert(args.end(), c.inputs.begin(), c.inputs.end());
    args.insert(args.end(), {"--out", out});
    auto r = run_moeforge(args);
    CAPTURE(c.expect);
    CAPTURE(r.err);
    CHECK(r.status == 4);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.err_lines() == 1);
    CHECK_FALSE(fs::exists(out));
  }
  // prune refuses an incomplete set too; --partial records what a merge covers, and then it is accepted with a warning.
  auto r = run_moeforge({"prune", kMoe, (dir / "p").string(), "--keep", "2", "--stats", s13, s33});
  CHECK(r.status == 4);
  CHECK(r.err.find("missing shards 2/3") != std::string::npos);
  r = run_moeforge({"stats", "merge", s13, s33, "--out", out, "--partial", "--json"});
  REQUIRE(r.status == 0);
  CHECK(r.err.find("partial merge: missing shards 2/3") != std::string::npos);
  CHECK(nlohmann::json::parse(r.out)["coverage"][0].get<std::string>().find("partial") != std::string::npos);
  r = run_moeforge({"prune", kMoe, (dir / "p").string(), "--keep", "2", "--stats", out});
  CHECK(r.status == 0);
  CHECK(r.err.find("missing shards 2/3") != std::string::npos);
  // The missing shard completes it.
  r = run_moeforge({"stats", "merge", out, s23, "--out", (dir / "full.st").string(), "--json"});
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  r = run_moeforge({"observe", kMoe, "--bytes", calib("en"), "--shard", "4/3", "--out", (dir / "x.st").string()});
  CHECK(r.status == 2);
  CHECK(r.err.find("--shard: expected K/N") != std::string::npos);
}

namespace {

// mpirun and moeforge-mpi, when this build has them. Without them the MPI tests say so and pass,
// unless MOEFORGE_REQUIRE_MPI=1 (scripts/test.sh, CI) makes that a failure.
struct MpiSetup {
  std::string mpirun, binary;
  bool available() const { return !mpirun.empty() && !binary.empty(); }
};

MpiSetup mpi_setup() {
  MpiSetup s;
#if defined(MOEFORGE_MPI_BINARY) && defined(MOEFORGE_MPIRUN)
  s.binary = MOEFORGE_MPI_BINARY;
  s.mpirun = MOEFORGE_MPIRUN;
  if (s.mpirun.empty() || s.mpirun.find("NOTFOUND") != std::string::npos || !fs::exists(s.binary)) s = {};
#endif
  const char* require = std::getenv("MOEFORGE_REQUIRE_MPI");
  if (!s.available() && require != nullptr && std::string(require) == "1")
    FAIL("MOEFORGE_REQUIRE_MPI=1 but this build has no moeforge-mpi or no mpirun (install libopenmpi-dev openmpi-bin: scripts/setup.sh)");
  if (!s.available()) MESSAGE("no moeforge-mpi or mpirun in this build: MPI tests not run");
  return s;
}

// mpirun -np N on this machine, as root in CI; every rank runs `args` (or each its own, MPMD).
RunResult mpirun(const MpiSetup& s, int np, const std::vector<std::string>& args, const std::string& binary = "") {
  std::vector<std::string> argv = {"-np", std::to_string(np), "--oversubscribe", "--allow-run-as-root", binary.empty() ? s.binary : binary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(s.mpirun, argv);
}

}  // namespace

TEST_SUITE("mpi") {

TEST_CASE("mpirun -np 2: observe equals one process (1e-9) and the merge of shards 1/2 and 2/2 (bit for bit)") {
  MpiSetup mpi = mpi_setup();
  if (!mpi.available()) return;
  ScratchDir dir("mpi-observe");
  std::string one = (dir / "one.st").string(), two = (dir / "two.st").string();
  REQUIRE(run_moeforge(observe3_args(one, {"--all-experts"})).status == 0);
  auto r = mpirun(mpi, 2, observe3_args(two, {"--all-experts", "--threads", "1"}));
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  double worst = compare_stats(two, one);
  MESSAGE("observe, 2 MPI ranks vs one process: largest relative difference per tensor " << worst);
  CHECK(worst <= 1e-9);
  std::vector<std::string> merge = {"stats", "merge"};
  for (int k = 1; k <= 2; ++k) {
    std::string shard = (dir / ("s" + std::to_string(k))).string();
    REQUIRE(run_moeforge(observe3_args(shard, {"--all-experts", "--shard", std::to_string(k) + "/2"})).status == 0);
    merge.push_back(shard);
  }
  merge.insert(merge.end(), {"--out", (dir / "merged.st").string(), "--quiet"});
  REQUIRE(run_moeforge(merge).status == 0);
  CHECK(compare_stats(two, (dir / "merged.st").string()) == 0);
}

TEST_CASE("mpirun -np 2: eval reports exactly what one process reports") {
  MpiSetup mpi = mpi_setup();
  if (!mpi.available()) return;
  std::vector<std::string> args = {"eval", kMoe, "--seq-len", "128", "--max-tokens", "16384", "--json", "--windows", "--bytes", calib("py"), calib("c")};
  auto one = run_moeforge(args);
  REQUIRE(one.status == 0);
  auto two = mpirun(mpi, 2, args);
  CAPTURE(two.err);
  REQUIRE(two.status == 0);
  CHECK(nlohmann::json::parse(two.out) == nlohmann::json::parse(one.out));  // rank 0 alone prints
}

TEST_CASE("mpirun -np 2: prune with calibration data writes what one process writes") {
  MpiSetup mpi = mpi_setup();
  if (!mpi.available()) return;
  ScratchDir dir("mpi-prune");
  auto args = [&](const std::string& name) {
    return std::vector<std::string>{"prune", kMoe, (dir / name).string(), "--bytes", calib("py"), calib("de"), "--seq-len", "128",
                                    "--max-tokens", "16384", "--keep", "2", "--report", (dir / (name + ".json")).string(), "--quiet"};
  };
  REQUIRE(run_moeforge(args("one")).status == 0);
  auto r = mpirun(mpi, 2, args("two"));
  CAPTURE(r.err);
  REQUIRE(r.status == 0);
  CHECK(run_moeforge({"diff", (dir / "two").string(), (dir / "one").string()}).status == 0);
  auto a = nlohmann::json::parse(read_text(dir / "two.json")), b = nlohmann::json::parse(read_text(dir / "one.json"));
  for (int l = 0; l < 2; ++l)
    for (int x = 0; x < 4; ++x) {
      CHECK(a["layers"][l]["experts"][x]["kept"] == b["layers"][l]["experts"][x]["kept"]);
      CHECK(a["layers"][l]["experts"][x]["score"].get<double>() == doctest::Approx(b["layers"][l]["experts"][x]["score"].get<double>()).epsilon(1e-12));
    }
}

TEST_CASE("mpirun: an error on one rank ends every rank with its message and leaves no output; the plain binary refuses") {
  MpiSetup mpi = mpi_setup();
  if (!mpi.available()) return;
  ScratchDir dir("mpi-fail");
  std::string out = (dir / "s.st").string(), missing = (dir / "missing.txt").string();
  // MPMD: rank 1 is given a data file that does not exist; rank 0 would wait for it forever.
  std::vector<std::string> argv = {"--oversubscribe", "--allow-run-as-root", "-np", "1", mpi.binary};
  auto rank0 = observe_args(out), rank1 = observe_args(out);
  std::replace(rank1.begin(), rank1.end(), calib("de"), missing);
  argv.insert(argv.end(), rank0.begin(), rank0.end());
  argv.insert(argv.end(), {":", "-np", "1", mpi.binary});
  argv.insert(argv.end(), rank1.begin(), rank1.end());
  auto r = run_program(mpi.mpirun, argv);
  CHECK(r.status != 0);
  CHECK(r.err.find("moeforge observe (rank 1 of 2): error: " + missing) != std::string::npos);
  CHECK(fs::is_empty(dir.path()));  // no statistics file, no partial file
  r = mpirun(mpi, 2, observe_args(out), MOEFORGE_BINARY);
  CHECK(r.status != 0);
  CHECK(r.err.find("built without MPI") != std::string::npos);
  CHECK(fs::is_empty(dir.path()));
}

}  // TEST_SUITE("mpi")
