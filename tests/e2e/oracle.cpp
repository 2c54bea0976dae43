#include "tests/e2e/oracle.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

namespace moeforge::test {
namespace fs = std::filesystem;

namespace {

fs::path oracle_dir() {
  const char* dir = std::getenv("MOEFORGE_TEST_ORACLE");
  if (dir == nullptr || !fs::is_regular_file(fs::path(dir) / "nll.mjs"))
    FAIL("the llama.cpp oracle is missing: run scripts/fetch-test-oracle.sh and set MOEFORGE_TEST_ORACLE=build/test-oracle (ctest sets it)");
  return dir;
}

}  // namespace

std::vector<double> llama_cpp_nll(const std::vector<fs::path>& models, const Windows& windows) {
  fs::path dir = oracle_dir();
  ScratchDir scratch("oracle");
  nlohmann::json w = {{"windows", windows}};
  write_bytes(scratch / "windows.json", w.dump());
  std::vector<std::string> args = {(dir / "nll.mjs").string(), (scratch / "windows.json").string()};
  for (const auto& m : models) args.push_back(fs::absolute(m).string());
  auto r = run_program("node", args);
  INFO("llama.cpp oracle stderr: " << r.err);
  REQUIRE(r.status == 0);
  std::vector<double> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line)["mean_nll"].get<double>());
  REQUIRE(out.size() == models.size());
  return out;
}

std::vector<std::vector<std::vector<float>>> llama_cpp_logits(const fs::path& model, const Windows& windows) {
  fs::path dir = oracle_dir();
  ScratchDir scratch("oracle-logits");
  write_bytes(scratch / "windows.json", nlohmann::json({{"windows", windows}}).dump());
  auto r = run_program("node", {(dir / "logits.mjs").string(), (scratch / "windows.json").string(), fs::absolute(model).string()});
  INFO("llama.cpp oracle stderr: " << r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out)["logits"].get<std::vector<std::vector<std::vector<float>>>>();
}

nlohmann::json gguf_inspect(const fs::path& file) {
  auto r = run_program("node", {(oracle_dir() / "inspect.mjs").string(), fs::absolute(file).string()});
  INFO("inspect.mjs stderr: " << r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

Windows byte_windows(const std::string& corpus, int count, int length) {
  std::string text = read_text(fixture("corpora/" + corpus + "/eval.txt"));
  Windows out;
  for (int w = 0; w < count; ++w) {
    std::vector<int32_t> ids;
    for (int i = 0; i < length; ++i) ids.push_back(static_cast<unsigned char>(text[static_cast<size_t>(w * length + i)]));
    out.push_back(std::move(ids));
  }
  return out;
}

fs::path write_windows_jsonl(const Windows& windows, const fs::path& file) {
  std::string text;
  for (const auto& w : windows) text += nlohmann::json(w).dump() + "\n";
  write_bytes(file, text);
  return file;
}

double moeforge_nll(const std::string& model, const fs::path& windows_jsonl) {
  auto r = run_moeforge({"eval", model, "--data", windows_jsonl.string(), "--seq-len", "100000", "--json"});
  INFO("moeforge eval " << model << ": " << r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out)["files"][0]["mean_nll"].get<double>();
}

void run_ok(const std::vector<std::string>& args) {
  auto r = run_moeforge(args);
  INFO("moeforge " << args[0] << ": " << r.err);
  REQUIRE(r.status == 0);
}

void check_gguf_matches_safetensors(std::vector<std::string> args, const fs::path& dir, const std::string& tag, const std::string& corpus,
                                    int count, int length) {
  Windows windows = byte_windows(corpus, count, length);
  fs::path ids = write_windows_jsonl(windows, dir / (tag + ".jsonl"));
  args.push_back((dir / tag).string());
  run_ok(args);
  args.back() = (dir / (tag + ".gguf")).string();
  run_ok(args);
  double oracle = llama_cpp_nll({dir / (tag + ".gguf")}, windows)[0];
  double own = moeforge_nll((dir / tag).string(), ids);
  MESSAGE(tag << ": llama.cpp " << oracle << ", moeforge " << own);
  CHECK(std::fabs(oracle - own) <= 1e-4);
}

}  // namespace moeforge::test

namespace moeforge::test {

std::vector<std::vector<int32_t>> llama_cpp_tokenize(const fs::path& gguf, const std::vector<std::string>& texts) {
  ScratchDir scratch("oracle-tok");
  write_bytes(scratch / "texts.json", nlohmann::json(texts).dump());
  auto r = run_program("node", {(oracle_dir() / "tokenize.mjs").string(), fs::absolute(gguf).string(), (scratch / "texts.json").string()});
  INFO("tokenize.mjs stderr: " << r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out).get<std::vector<std::vector<int32_t>>>();
}

}  // namespace moeforge::test
