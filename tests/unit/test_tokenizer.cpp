// Tokenizers against published ids (llama.cpp's expected outputs of Hugging Face tokenizers) for
// Llama-2 (GGUF and tokenizer.json), GPT-2, Llama-3 and Qwen2; decode(encode(text)) == text on the
// corpora; added tokens; malformed files. The byte-level vocabularies are too large to commit:
// scripts/fetch-test-tokenizers.sh puts them in build/test-assets, named by MOEFORGE_TEST_ASSETS.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "formats/gguf.hpp"
#include "text/tokenizer.hpp"
#include "text/tokenizer_text.hpp"
#include "tests/test_support.hpp"
#include "tests/unit/tokenizer_vectors.hpp"

using namespace moeforge;
using json = nlohmann::json;
namespace fs = std::filesystem;
namespace v = moeforge::test::vectors;

namespace {

const char* const kGguf = "models/tiny-random-llama-2.gguf";
const std::vector<std::string> kDomains = {"en", "py", "de", "c"};

fs::path assets() {
  const char* dir = std::getenv("MOEFORGE_TEST_ASSETS");
  if (dir == nullptr || *dir == '\0')
    FAIL("MOEFORGE_TEST_ASSETS is not set: run scripts/fetch-test-tokenizers.sh and set MOEFORGE_TEST_ASSETS=build/test-assets");
  if (!fs::is_directory(dir)) FAIL("MOEFORGE_TEST_ASSETS=" << dir << " is not a directory: run scripts/fetch-test-tokenizers.sh");
  return dir;
}

const Tokenizer& gguf_llama2() {
  static auto tok = load_tokenizer(test::fixture(kGguf));
  return *tok;
}

const Tokenizer& asset(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& t = loaded[name];
  if (!t) t = load_tokenizer(assets() / name);
  return *t;
}

// encode(text) == ids and decode(ids) == text for every published vector (or those whose text
// does not start with a space, for Metaspace: it prepends "▁" only when there is none).
void check_vectors(const Tokenizer& tok, const std::vector<std::vector<int32_t>>& expected, bool skip_leading_space = false) {
  REQUIRE(expected.size() == v::kTexts.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (skip_leading_space && v::kTexts[i].compare(0, 1, " ") == 0) continue;
    CAPTURE(i);
    CAPTURE(v::kTexts[i]);
    CHECK(tok.encode(v::kTexts[i]) == expected[i]);
    CHECK(tok.decode(expected[i]) == v::kTexts[i]);
  }
}

// Splits of each normal token into two tokens, best merged score first (as transformers'
// SentencePiece converter orders them): the ranked merges of the same vocabulary.
json spm_merges(const std::vector<std::string>& tokens, const json& scores, const json& types, const json& vocab, bool as_pairs) {
  struct Merge {
    float score;
    int32_t left, right;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i].get<int>() != 1) continue;
    const std::string& t = tokens[i];
    for (size_t k = utf8_char_len(t, 0); k < t.size(); k += utf8_char_len(t, k))
      if (vocab.contains(t.substr(0, k)) && vocab.contains(t.substr(k)))
        merges.push_back({scores[i].get<float>(), vocab[t.substr(0, k)].get<int32_t>(), vocab[t.substr(k)].get<int32_t>()});
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json out = json::array();
  for (const auto& m : merges) {
    const std::string &a = tokens[static_cast<size_t>(m.left)], &b = tokens[static_cast<size_t>(m.right)];
    out.push_back(as_pairs ? json::array({a, b}) : json(a + " " + b));
  }
  return out;
}

// The GGUF fixture's Llama-2 vocabulary as a SentencePiece-style tokenizer.json: either the
// legacy normalizers (Prepend + Replace) or a Metaspace pre-tokenizer and decoder.
void write_llama2_tokenizer_json(const fs::path& dir, bool metaspace) {
  GgufFile g = read_gguf(test::fixture(kGguf));
  auto tokens = g.find_value("tokenizer.ggml.tokens")->get<std::vector<std::string>>();
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  json model = {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab}, {"dropout", nullptr}};
  model["merges"] = spm_merges(tokens, *g.find_value("tokenizer.ggml.scores"), *g.find_value("tokenizer.ggml.token_type"), vocab, metaspace);
  json added = json::array();
  for (int id : {0, 1, 2}) added.push_back({{"id", id}, {"content", tokens[static_cast<size_t>(id)]}, {"special", true}, {"normalized", false}});
  json t = {{"version", "1.0"}, {"added_tokens", added}, {"model", model}};
  auto step = [](const char* type) { return json{{"type", type}}; };
  auto sequence = [](const char* key, json steps) { return json{{"type", "Sequence"}, {key, std::move(steps)}}; };
  json space_to_marker = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
  json marker_to_space = {{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}};
  json strip = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}};
  if (metaspace) {
    json meta = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
    t["pre_tokenizer"] = meta;
    t["decoder"] = sequence("decoders", json::array({meta, step("ByteFallback"), step("Fuse")}));
  } else {
    json prepend = {{"type", "Prepend"}, {"prepend", "\u2581"}};
    t["normalizer"] = sequence("normalizers", json::array({prepend, space_to_marker}));
    t["decoder"] = sequence("decoders", json::array({marker_to_space, step("ByteFallback"), step("Fuse"), strip}));
  }
  t["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  test::write_bytes(dir / "tokenizer.json", t.dump());
  test::write_bytes(dir / "tokenizer_config.json",
                    json{{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", "<s>"}, {"eos_token", {{"content", "</s>"}}}, {"add_bos_token", true}}.dump());
}

}  // namespace

TEST_CASE("tokenizer: Llama-2 SentencePiece from GGUF gives llama.cpp's published ids") {
  const Tokenizer& tok = gguf_llama2();
  check_vectors(tok, v::kLlama2Ids);
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(tok.bos_text() == "<s>");
  CHECK(tok.piece(15043) == "\u2581Hello");
  CHECK(tok.piece(13) == "<0x0A>");
  CHECK(tok.text_bytes(15043) == 6);  // " Hello"
  CHECK(tok.text_bytes(13) == 1);
  CHECK(tok.text_bytes(1) == 0);      // BOS stands for no text
  CHECK(tok.encode_with_specials("Hello world") == std::vector<int32_t>{1, 15043, 3186});
  CHECK(tok.encode("<s>Hello</s>") == std::vector<int32_t>{1, 15043, 2});  // control tokens split out
  CHECK_THROWS_AS(tok.piece(32000), UsageError);
}

TEST_CASE("tokenizer: Llama-2 tokenizer.json (ranked merges, byte fallback) gives the same ids") {
  for (bool metaspace : {false, true}) {
    CAPTURE(metaspace);
    test::ScratchDir dir("tokenizer-llama2");
    write_llama2_tokenizer_json(dir.path(), metaspace);
    auto tok = load_tokenizer(dir.path());
    check_vectors(*tok, v::kLlama2Ids, metaspace);
    CHECK(tok->bos() == 1);
    CHECK(tok->eos() == 2);
    CHECK(tok->encode_with_specials("Hello world") == std::vector<int32_t>{1, 15043, 3186});
  }
}

TEST_CASE("tokenizer: GPT-2 byte-level BPE gives the published ids") {
  const Tokenizer& tok = asset("gpt2");
  check_vectors(tok, v::kGpt2Ids);
  CHECK(tok.encode(v::kGpt2ExtraText) == v::kGpt2ExtraIds);
  CHECK(tok.decode(v::kGpt2ExtraIds) == v::kGpt2ExtraText);
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.encode("a<|endoftext|>b") == std::vector<int32_t>{64, 50256, 65});
  CHECK(tok.eos() == 50256);
  CHECK(tok.piece(18435) == "\u0120Hello");
  CHECK(tok.text_bytes(18435) == 6);
  CHECK(tok.text_bytes(50256) == 0);
  size_t bytes = 0;
  for (int32_t id : v::kGpt2ExtraIds) bytes += tok.text_bytes(id);
  CHECK(bytes == v::kGpt2ExtraText.size());
}

TEST_CASE("tokenizer: Llama-3 byte-level BPE gives the published ids") {
  const Tokenizer& tok = asset("llama3");
  check_vectors(tok, v::kLlama3Ids);
  CHECK(tok.encode(v::kLlama3ExtraText) == v::kLlama3ExtraIds);
  CHECK(tok.bos() == 128000);
  CHECK(tok.eos() == 128001);
  CHECK(tok.bos_text() == "<|begin_of_text|>");
  CHECK(tok.encode("<|begin_of_text|>Hello") == std::vector<int32_t>{128000, 9906});
  CHECK(tok.vocab_size() == 128256);
}

TEST_CASE("tokenizer: Qwen2 byte-level BPE gives the published ids") {
  const Tokenizer& tok = asset("qwen");
  check_vectors(tok, v::kQwen2Ids);
  CHECK_FALSE(tok.bos().has_value());
  CHECK(tok.bos_text().empty());
  CHECK(tok.eos() == 151645);  // <|im_end|>, as tokenizer_config.json says
  auto ids = tok.encode("<|im_start|>user\nHello<|im_end|>");
  auto body = tok.encode("user\nHello");
  REQUIRE(ids.size() == body.size() + 2);
  CHECK(ids.front() == 151644);
  CHECK(ids.back() == 151645);
  CHECK(std::equal(body.begin(), body.end(), ids.begin() + 1));
  CHECK(tok.encode_with_specials("Hello") == std::vector<int32_t>{9707});
}

TEST_CASE("tokenizer: NFC normalization (Qwen2)") {
  CHECK(nfc("plain ASCII and \xC3\xA9") == "plain ASCII and \xC3\xA9");
  CHECK(nfc("e\xCC\x81") == "\xC3\xA9");  // e + combining acute → é
  CHECK(asset("qwen").encode("Caf" "e\xCC\x81") == asset("qwen").encode("Caf\xC3\xA9"));
}

TEST_CASE("tokenizer: decode(encode(text)) == text on every corpus for byte-level tokenizers") {
  std::vector<std::pair<std::string, const Tokenizer*>> toks = {{"gpt2", &asset("gpt2")}, {"llama3", &asset("llama3")}, {"qwen", &asset("qwen")}};
  auto bytes = byte_tokenizer();
  toks.emplace_back("bytes", bytes.get());
  for (const auto& d : kDomains) {
    std::string text = test::read_text(test::fixture("corpora/" + d + "/calib.txt"));
    for (const auto& entry : toks) {  // no structured binding: clang 14 cannot capture one in CAPTURE
      const std::string& name = entry.first;
      const Tokenizer* tok = entry.second;
      CAPTURE(name);
      CAPTURE(d);
      auto ids = tok->encode(text);
      CHECK(ids.size() <= text.size());
      CHECK(tok->decode(ids) == text);
    }
  }
}

TEST_CASE("tokenizer: raw bytes for byte-level models") {
  auto tok = byte_tokenizer();
  std::string text = "a\xFF\n";
  CHECK(tok->encode(text) == std::vector<int32_t>{97, 255, 10});
  CHECK(tok->decode({97, 255, 10}) == text);
  CHECK(tok->piece(97) == "a");
  CHECK(tok->piece(10) == "<0x0A>");
  CHECK(tok->vocab_size() == 256);
  CHECK_FALSE(tok->bos().has_value());
  CHECK_THROWS_AS(tok->decode({256}), UsageError);
  auto from_dir = load_tokenizer(test::fixture("models/btx-bytes/base"));
  CHECK(from_dir->vocab_size() == 256);
  CHECK(from_dir->encode("hi") == std::vector<int32_t>{104, 105});
}
