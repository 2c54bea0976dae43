// End to end: the output-safety rules (README "Output checkpoints"). Every case here destroyed,
// overwrote or corrupted a file in moeforge 0.1; each must now be refused with one clear line,
// leaving every existing file byte for byte as it was.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

std::string models(const std::string& rel) { return fixture("models/" + rel).string(); }
std::string corpus(const std::string& d) { return fixture("corpora/" + d + "/calib.txt").string(); }

// Every regular file under dir with its bytes: "nothing changed" is equality of two snapshots.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && !e.is_symlink()) out[fs::relative(e.path(), dir).string()] = read_text(e.path());
  return out;
}

void copy_model(const std::string& rel, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(fixture("models/" + rel))) fs::copy_file(e.path(), to / e.path().filename());
}

void expect_refused(const RunResult& r, const std::string& says) {
  CAPTURE(r.err);
  CHECK(r.status != 0);
  CHECK(r.status < 128);  // an error exit, not a crash
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find(says) != std::string::npos);
}

}  // namespace

TEST_CASE("--force replaces only what moeforge wrote, and never an input") {
  ScratchDir dir("force");
  fs::path out = dir / "out";
  REQUIRE(run_moeforge({"convert", models("tiny-llama"), out.string(), "--quiet"}).status == 0);
  CHECK(fs::exists(out / "moeforge.json"));
  SUBCASE("an unrelated file in the output: refused, kept") {
    write_bytes(out / "my-embeddings.safetensors", "mine");
    auto before = snapshot(dir.path());
    expect_refused(run_moeforge({"convert", models("tiny-llama"), out.string(), "--force"}), "my-embeddings.safetensors");
    CHECK(snapshot(dir.path()) == before);
  }
  SUBCASE("files of the earlier output that the new one lacks are removed") {
    write_bytes(dir / "tok.json", "{}");
    // A second moeforge output with a side file: generation_config.json comes from tiny-llama,
    // btx base has one too; make the old output hold a file the new one does not write.
    nlohmann::json marker = nlohmann::json::parse(read_text(out / "moeforge.json"));
    write_bytes(out / "tokenizer.json", "{\"stale\": true}");
    marker["files"].push_back("tokenizer.json");
    write_bytes(out / "moeforge.json", marker.dump());
    REQUIRE(run_moeforge({"convert", models("btx-bytes/base"), out.string(), "--force", "--quiet"}).status == 0);
    CHECK_FALSE(fs::exists(out / "tokenizer.json"));
    CHECK(fs::exists(out / "model.safetensors"));
  }
  SUBCASE("a directory without moeforge.json is never replaced") {
    fs::path theirs = dir / "theirs";
    fs::create_directories(theirs);
    write_bytes(theirs / "model.safetensors", "precious");
    expect_refused(run_moeforge({"convert", models("tiny-llama"), theirs.string(), "--force"}), "not written by moeforge");
    CHECK(read_text(theirs / "model.safetensors") == "precious");
  }
  SUBCASE("prune's statistics inside the output directory: refused, the statistics kept") {
    fs::path stats_dir = dir / "statsdir";
    fs::create_directories(stats_dir);
    REQUIRE(run_moeforge({"observe", models("btx-bytes/merged-mixtral-top2"), "--bytes", corpus("de"), "--seq-len", "128", "--max-tokens",
                          "1024", "--out", (stats_dir / "s.safetensors").string(), "--quiet"})
                .status == 0);
    auto before = snapshot(stats_dir);
    expect_refused(run_moeforge({"prune", models("btx-bytes/merged-mixtral-top2"), stats_dir.string(), "--stats",
                                 (stats_dir / "s.safetensors").string(), "--keep", "1", "--force"}),
                   "contains the input");
    CHECK(snapshot(stats_dir) == before);
  }
}

TEST_CASE("outputs that are, contain or lie inside an input are refused, files and directories alike") {
  ScratchDir dir("inputs");
  fs::path m = dir / "m";
  copy_model("btx-bytes/merged-mixtral-top2", m);
  write_bytes(dir / "notes.txt", "my notes");
  auto before = snapshot(dir.path());
  std::string mm = m.string(), de = corpus("de");
  expect_refused(run_moeforge({"observe", mm, "--bytes", de, "--max-tokens", "256", "--out", (m / "model.safetensors").string(), "--force"}),
                 "inside the input directory");
  expect_refused(run_moeforge({"observe", mm, "--bytes", de, "--max-tokens", "256", "--out", (m / "stats.safetensors").string()}),
                 "inside the input directory");
  expect_refused(run_moeforge({"prune", mm, (dir / "p").string(), "--keep", "2", "--criterion", "random", "--report", (m / "config.json").string()}),
                 "inside the input directory");
  expect_refused(run_moeforge({"prune", mm, (dir / "p").string(), "--keep", "2", "--criterion", "random", "--plot", (dir / "notes.txt").string()}),
                 "exists; hint: pass --force");
  expect_refused(run_moeforge({"convert", mm, mm, "--force"}), "is also an input");
  expect_refused(run_moeforge({"convert", mm, (m / "sub").string()}), "inside the input directory");
  expect_refused(run_moeforge({"convert", mm, dir.path().string(), "--force"}), "contains the input");
  // Through a symlink to the input.
  fs::create_directory_symlink(m, dir / "alias");
  expect_refused(run_moeforge({"convert", mm, (dir / "alias").string(), "--force"}), "is also an input");
  // Report and plot coinciding, or inside the output.
  expect_refused(run_moeforge({"prune", mm, (dir / "p").string(), "--keep", "2", "--criterion", "random", "--report",
                               (dir / "r.json").string(), "--plot", (dir / "r.json").string()}),
                 "written twice");
  expect_refused(run_moeforge({"prune", mm, (dir / "p").string(), "--keep", "2", "--criterion", "random", "--report",
                               (dir / "p" / "r.json").string()}),
                 "lies inside the output");
  fs::remove(dir / "alias");
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("--dry-run writes nothing, reports included, and fails when the run would be refused") {
  ScratchDir dir("dry");
  std::string mm = models("btx-bytes/merged-mixtral-top2");
  auto r = run_moeforge({"prune", mm, (dir / "p").string(), "--keep", "2", "--criterion", "random", "--dry-run", "--report",
                         (dir / "r.json").string(), "--plot", (dir / "r.svg").string()});
  CHECK(r.status == 0);
  CHECK(fs::is_empty(dir.path()));
  fs::create_directories(dir / "taken");
  write_bytes(dir / "taken" / "x", "x");
  expect_refused(run_moeforge({"prune", mm, (dir / "taken").string(), "--keep", "2", "--criterion", "random", "--dry-run"}), "not empty");
  // A trailing slash names the same directory.
  CHECK(run_moeforge({"convert", models("tiny-llama"), (dir / "slash/").string(), "--quiet"}).status == 0);
  CHECK(fs::exists(dir / "slash" / "model.safetensors"));
}

TEST_CASE("planted links and leftovers are never followed or overwritten") {
  ScratchDir dir("links");
  fs::path out = dir / "out";
  fs::create_directories(out);
  write_bytes(dir / "victim.txt", "victim");
  fs::create_symlink(dir / "victim.txt", out / "config.json.partial");
  auto r = run_moeforge({"convert", models("tiny-llama"), (dir / "out2").string(), "--quiet"});
  CHECK(r.status == 0);
  // The planted link lives in a directory moeforge did not write: refused even with --force.
  expect_refused(run_moeforge({"convert", models("tiny-llama"), out.string(), "--force"}), "not written by moeforge");
  // In an output of its own, a planted partial file is refused, not followed.
  fs::path ours = dir / "out2";
  fs::create_symlink(dir / "victim.txt", ours / "config.json.partial");
  nlohmann::json marker = nlohmann::json::parse(read_text(ours / "moeforge.json"));
  marker["files"].push_back("config.json.partial");  // even if a marker claims it
  write_bytes(ours / "moeforge.json", marker.dump());
  r = run_moeforge({"convert", models("tiny-llama"), ours.string(), "--force"});
  CHECK(r.status != 0);
  CHECK(r.err_lines() == 1);
  CHECK(read_text(dir / "victim.txt") == "victim");
  // A single-file output through a planted partial link.
  fs::create_symlink(dir / "victim.txt", dir / "s.safetensors.partial");
  expect_refused(run_moeforge({"observe", models("btx-bytes/base"), "--bytes", corpus("en"), "--max-tokens", "256", "--out",
                               (dir / "s.safetensors").string()}),
                 "already exists");
  CHECK(read_text(dir / "victim.txt") == "victim");
}

TEST_CASE("two writers of one output: the second is refused, the first's checkpoint is intact") {
  ScratchDir dir("race");
  make_big_checkpoint(dir / "big", 192);
  fs::path out = dir / "out";
  std::vector<std::string> args = {"convert", (dir / "big").string(), out.string(), "--dtype", "bf16", "--threads", "1", "--quiet"};
  int first = spawn_moeforge(args);
  // Start the second writer once the first holds the directory.
  for (int i = 0; i < 20000 && !fs::exists(out); ++i) usleep(500);
  auto second = run_moeforge(args);
  int status = 0;
  waitpid(first, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CAPTURE(second.err);
  CHECK(second.status != 0);
  CHECK(second.err_lines() == 1);
  // The result is exactly one writer's: equal to a clean conversion.
  REQUIRE(run_moeforge({"convert", (dir / "big").string(), (dir / "ref").string(), "--dtype", "bf16", "--quiet"}).status == 0);
  CHECK(run_moeforge({"diff", out.string(), (dir / "ref").string()}).status == 0);
  CHECK(read_text(out / "model.safetensors") == read_text(dir / "ref" / "model.safetensors"));
}

TEST_CASE("recipes: no step may write what any step reads; kept intermediates are never deleted first") {
  ScratchDir dir("recipe");
  fs::path in = dir / "inmodel";
  copy_model("btx-bytes/merged-mixtral-top2", in);
  fs::create_directories(dir / "recipes");
  auto before = snapshot(in);
  write_bytes(dir / "recipes" / "self.yaml", "output: ../inmodel\nsteps:\n  - prune: {model: ../inmodel, keep: 2, criterion: random}\n");
  expect_refused(run_moeforge({"run", (dir / "recipes" / "self.yaml").string(), "--force"}), "is also an input");
  CHECK(snapshot(in) == before);
  // A later step's output over an earlier step's input.
  write_bytes(dir / "recipes" / "late.yaml",
              "output: ../out\nsteps:\n  - convert: {input: ../inmodel}\n  - prune: {keep: 2, criterion: random, report: ../inmodel/config.json}\n");
  expect_refused(run_moeforge({"run", (dir / "recipes" / "late.yaml").string(), "--force"}), "inside the input directory");
  CHECK(snapshot(in) == before);
  // Intermediates kept by an earlier run are refused, not deleted, before anything runs.
  fs::create_directories(dir / "out.moeforge-steps" / "step-1-convert");
  write_bytes(dir / "out.moeforge-steps" / "step-1-convert" / "keep.txt", "kept");
  write_bytes(dir / "recipes" / "ok.yaml", "output: ../out\nsteps:\n  - convert: {input: ../inmodel}\n  - prune: {keep: 2, criterion: random}\n");
  expect_refused(run_moeforge({"run", (dir / "recipes" / "ok.yaml").string()}), "moeforge-steps: exists");
  write_bytes(dir / "recipes" / "bad.yaml", "output: ../out\nsteps:\n  - convert: {input: ../inmodel}\n  - prune: {keep: 0}\n");
  CHECK(run_moeforge({"run", (dir / "recipes" / "bad.yaml").string()}).status == 2);
  CHECK(read_text(dir / "out.moeforge-steps" / "step-1-convert" / "keep.txt") == "kept");
  fs::remove_all(dir / "out.moeforge-steps");
  CHECK(run_moeforge({"run", (dir / "recipes" / "ok.yaml").string(), "--quiet"}).status == 0);
  CHECK_FALSE(fs::exists(dir / "out.moeforge-steps"));
  CHECK(fs::exists(dir / "out" / "model.safetensors"));
  // The provenance names no file that no longer exists: intermediates are named as such.
  auto marker = nlohmann::json::parse(read_text(dir / "out" / "moeforge.json"));
  for (const auto& p : marker["inputs"]) {
    std::string s = p;
    CHECK((fs::exists(s) || s.rfind("(generated by the recipe: step-1-convert)", 0) == 0));
  }
}

TEST_CASE("interrupts remove partial files and a recipe's intermediates, whichever thread the signal reaches") {
  ScratchDir dir("interrupt");
  make_big_checkpoint(dir / "big", 256);
  // Both BLAS variants: the pthread one starts threads before main that may take SIGINT.
  std::vector<std::string> variants;
  for (const char* v : {"/usr/lib/x86_64-linux-gnu/openblas-pthread", "/usr/lib/x86_64-linux-gnu/openblas-openmp"})
    if (fs::exists(v)) variants.push_back(v);
  CHECK(variants.size() == 2);  // scripts/setup.sh installs both
  write_bytes(dir / "pipe.yaml", "output: " + (dir / "piped").string() + "\nsteps:\n  - convert: {input: " + (dir / "big").string() +
                                     ", dtype: bf16}\n  - convert: {dtype: f32}\n");
  for (const auto& blas : variants) {
    CAPTURE(blas);
    std::vector<std::string> env = {"LD_LIBRARY_PATH=" + blas};
    fs::path out = dir / "out";
    fs::remove_all(out);
    int pid = spawn_moeforge({"convert", (dir / "big").string(), out.string(), "--dtype", "bf16", "--threads", "1", "--quiet"}, env);
    bool started = false;
    for (int i = 0; i < 20000 && !started; ++i) {
      usleep(500);
      std::error_code ec;
      if (fs::exists(out, ec))
        for (const auto& e : fs::directory_iterator(out, ec)) started = started || e.path().extension() == ".partial";
    }
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(started);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK((!fs::exists(out) || fs::is_empty(out)));

    // Ctrl-C in step 2 of a pipeline: no intermediate is left behind.
    fs::remove_all(dir / "piped");
    pid = spawn_moeforge({"run", (dir / "pipe.yaml").string(), "--threads", "1", "--quiet"}, env);
    fs::path step2 = dir / "piped";
    started = false;
    for (int i = 0; i < 60000 && !started; ++i) {
      usleep(500);
      std::error_code ec;
      if (fs::exists(step2, ec))
        for (const auto& e : fs::directory_iterator(step2, ec)) started = started || e.path().extension() == ".partial";
    }
    kill(pid, SIGINT);
    waitpid(pid, &status, 0);
    REQUIRE(started);
    CHECK(WEXITSTATUS(status) == 130);
    CHECK_FALSE(fs::exists(dir / "piped.moeforge-steps"));
    CHECK((!fs::exists(step2) || fs::is_empty(step2)));
  }
}
