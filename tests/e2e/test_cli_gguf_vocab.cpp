// End to end: the vocabulary moeforge writes into a GGUF tokenizes text in llama.cpp exactly as
// the Hugging Face tokenizer.json it came from (GPT-2, Llama-3 and Qwen byte-level BPE with their
// pre-tokenizer names; Llama-2 style SentencePiece BPE with scores from the merge ranks), and
// moeforge reads the same vocabulary back from the GGUF.
#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "formats/gguf.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/e2e/oracle.hpp"
#include "tests/test_support.hpp"
#include "text/tokenizer.hpp"

using namespace moeforge;
using namespace moeforge::test;
namespace fs = std::filesystem;

namespace {

fs::path assets() {
  const char* dir = std::getenv("MOEFORGE_TEST_ASSETS");
  if (dir == nullptr || !fs::is_directory(dir))
    FAIL("MOEFORGE_TEST_ASSETS is not set: run scripts/fetch-test-tokenizers.sh (ctest sets it to build/test-assets)");
  return dir;
}

std::vector<std::string> texts() {
  std::vector<std::string> out = {"Hello world! This is a test.", "  leading spaces,\ttabs\nand newlines\n\n",
                                  "Ünïcödé: 日本語のテキスト 🙂 ", "numbers 1234567 and 3.14159", "don't you'll I'M    ok"};
  for (const char* d : {"en", "py", "de", "c"}) out.push_back(read_text(fixture(std::string("corpora/") + d + "/eval.txt")).substr(0, 1500));
  return out;
}

}  // namespace

TEST_CASE("gguf vocab: llama.cpp tokenizes like tokenizer.json (gpt2, llama3, qwen, llama2-hf)") {
  ScratchDir dir("gguf-vocab");
  for (const auto& [name, pre] : std::vector<std::pair<std::string, std::string>>{
           {"gpt2", "gpt-2"}, {"llama3", "llama-bpe"}, {"qwen", "qwen2"}, {"llama2-hf", "default"}}) {
    CAPTURE(name);
    fs::path src = assets() / name;
    auto hf = load_tokenizer(src);
    fs::path model = dir / name;  // a one-layer model with this vocabulary and its tokenizer files
    auto r = run_program(MOEFORGE_MAKE_MODEL, {"--family", "llama", "--hidden", "32", "--intermediate", "64", "--layers", "1", "--heads", "2",
                                               "--kv-heads", "1", "--vocab", std::to_string(hf->vocab_size()), "--dtype", "bf16", model.string()});
    REQUIRE(r.status == 0);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(src / f, model / f);
    fs::path gguf = dir / (name + ".gguf");
    r = run_moeforge({"convert", model.string(), gguf.string(), "--quiet"});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    GgufFile g = read_gguf(gguf);
    CHECK(g.find_value("tokenizer.ggml.pre")->get<std::string>() == pre);
    auto from_gguf = load_tokenizer(gguf);
    auto llama = llama_cpp_tokenize(gguf, texts());
    for (size_t i = 0; i < texts().size(); ++i) {
      CAPTURE(i);
      auto want = hf->encode(texts()[i]);
      CHECK(llama[i] == want);
      CHECK(from_gguf->encode(texts()[i]) == want);
    }
  }
}
