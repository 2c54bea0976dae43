// Small hand-written tokenizer.json files: added tokens (lstrip, rstrip, single_word, longest
// match), unknown tokens, Metaspace, split behaviors, ignore_merges, post-processors and
// tokenizer_config.json; malformed tokenizer.json and GGUF vocabularies; where load_tokenizer looks.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "text/text_data.hpp"
#include "text/tokenizer.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using json = nlohmann::json;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

const std::string kMarker = "\u2581";

json added(int id, const std::string& content, const char* option = nullptr) {
  json t = {{"id", id}, {"content", content}, {"special", true}, {"normalized", false}};
  if (option != nullptr) t[option] = true;
  return t;
}

json tiny() {
  json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {" ", 3}, {"c", 4}, {"<unk>", 5}};
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}, {"unk_token", "<unk>"}, {"fuse_unk", true}};
  json extra = json::array({added(6, "<x>"), added(7, "<l>", "lstrip"), added(8, "<r>", "rstrip"), added(9, "cc", "single_word"), added(10, "<x>>")});
  return {{"version", "1.0"}, {"model", model}, {"added_tokens", extra}};
}

struct Written {
  test::ScratchDir dir{"tokenizer-file"};
  fs::path path() const { return dir / "tokenizer.json"; }
};

std::unique_ptr<Tokenizer> load(const json& t, Written& w, const json& config = nullptr) {
  test::write_bytes(w.path(), t.dump());
  if (!config.is_null()) test::write_bytes(w.dir / "tokenizer_config.json", config.dump());
  return load_tokenizer(w.path());
}

// The message of the error loading `text` as tokenizer.json (with an optional config) raises.
std::string error_of(const std::string& text, const std::string& config = "", fs::path* file = nullptr) {
  static Written w;
  test::write_bytes(w.path(), text);
  fs::remove(w.dir / "tokenizer_config.json");
  if (!config.empty()) test::write_bytes(w.dir / "tokenizer_config.json", config);
  if (file != nullptr) *file = config.empty() ? w.path() : w.dir / "tokenizer_config.json";
  try {
    load_tokenizer(w.path());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The error names the file and the entry (and whatever else is given).
void check_error(const json& t, const std::vector<std::string>& parts) {
  fs::path file;
  std::string message = error_of(t.dump(), "", &file);
  CAPTURE(message);
  CHECK(message.find(file.string()) != std::string::npos);
  for (const auto& p : parts) CHECK(message.find(p) != std::string::npos);
}

}  // namespace

TEST_CASE("tokenizer.json: added tokens are split out, longest match first, with their options") {
  Written w;
  auto tok = load(tiny(), w);
  CHECK(tok->encode("ab<x>a") == Ids{2, 6, 0});
  CHECK(tok->encode("<x>>") == Ids{10});         // longest added token wins
  CHECK(tok->encode("a <l>b") == Ids{0, 7, 1});  // lstrip takes the space before it
  CHECK(tok->encode("a<r>  b") == Ids{0, 8, 1}); // rstrip the spaces after it
  CHECK(tok->encode("cc a") == Ids{9, 3, 0});
  CHECK(tok->encode("acc") == Ids{0, 4, 4});     // single_word: not inside a word
  CHECK(tok->encode("zzab") == Ids{5, 2});       // unknown characters fused into one <unk>
  CHECK(tok->vocab_size() == 11);
  CHECK(tok->piece(6) == "<x>");
  CHECK(tok->decode({0, 1}) == "a b");  // no decoder: pieces joined by spaces, as HF does
  CHECK_FALSE(tok->bos().has_value());
  CHECK(tok->encode_with_specials("ab") == Ids{2});
  json unfused = tiny();
  unfused["model"]["fuse_unk"] = false;
  CHECK(load(unfused, w)->encode("zzab") == Ids{5, 5, 2});
}

TEST_CASE("tokenizer.json: post-processors and tokenizer_config.json give the specials") {
  Written w;
  json t = tiny();
  t["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<x>"}}}}, {{"Sequence", {{"id", "A"}}}}, {{"SpecialToken", {{"id", "<r>"}}}}}},
                         {"special_tokens", {{"<x>", {{"id", "<x>"}, {"ids", {6}}}}, {"<r>", {{"id", "<r>"}, {"ids", {8}}}}}}};
  auto tok = load(t, w);
  CHECK(tok->encode_with_specials("ab") == Ids{6, 2, 8});
  CHECK(tok->bos() == 6);  // without tokenizer_config.json: the template's first special token
  t["post_processor"] = {{"type", "Sequence"}, {"processors", {{{"type", "ByteLevel"}}, {{"type", "RobertaProcessing"}, {"cls", {"<x>", 6}}, {"sep", {"<r>", 8}}}}}};
  tok = load(t, w, {{"bos_token", "<x>"}, {"eos_token", {{"content", "<r>"}}}});
  CHECK(tok->encode_with_specials("ab") == Ids{6, 2, 8});
  CHECK(tok->bos() == 6);
  CHECK(tok->eos() == 8);
  CHECK(tok->bos_text() == "<x>");
  CHECK(tokenize_prompt(*tok, "ab") == Ids{6, 2});  // BOS text matched as the added token
  // transformers' fast Llama tokenizer rebuilds the post-processor from add_bos/eos_token.
  tok = load(t, w, {{"tokenizer_class", "LlamaTokenizerFast"}, {"bos_token", "<x>"}, {"eos_token", "<r>"}, {"add_bos_token", false}, {"add_eos_token", true}});
  CHECK(tok->encode_with_specials("ab") == Ids{2, 8});
}

TEST_CASE("tokenizer.json: Metaspace, split behaviors and ignore_merges") {
  Written w;
  json vocab = {{kMarker, 0}, {"a", 1}, {"b", 2}, {kMarker + "a", 3}, {kMarker + "b", 4}};
  json t = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({json::array({kMarker, "a"}), json::array({kMarker, "b"})})}}}, {"added_tokens", {added(5, "<x>")}}};
  t["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kMarker}, {"prepend_scheme", "always"}, {"split", true}};
  t["decoder"] = {{"type", "Metaspace"}, {"replacement", kMarker}, {"prepend_scheme", "always"}};
  CHECK(load(t, w)->encode("a b<x>b") == Ids{3, 4, 5, 4});
  CHECK(load(t, w)->decode({3, 4}) == "a b");
  t["pre_tokenizer"]["prepend_scheme"] = "first";  // only at the very start of the input
  CHECK(load(t, w)->encode("a b<x>b") == Ids{3, 4, 5, 2});

  json s = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"-", 2}, {"a-", 3}, {"-b", 4}}}, {"merges", {"a -", "- b"}}}}};
  auto split = [&](const char* behavior, bool invert) {
    s["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    return load(s, w)->encode("a-b");
  };
  CHECK(split("Isolated", false) == Ids{0, 2, 1});
  CHECK(split("Removed", false) == Ids{0, 1});
  CHECK(split("MergedWithPrevious", false) == Ids{3, 1});
  CHECK(split("MergedWithNext", false) == Ids{0, 4});
  CHECK(split("Removed", true) == Ids{2});  // inverted: the matches are kept

  json m = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}}}, {"merges", {"a b"}}}}};
  CHECK(load(m, w)->encode("abc") == Ids{3, 2});
  m["model"]["ignore_merges"] = true;  // a word that is a token is taken whole
  CHECK(load(m, w)->encode("abc") == Ids{4});
}

TEST_CASE("tokenizer.json: malformed files name the file and the bad entry") {
  fs::path file;
  std::string message = error_of("{\"model\": {", "", &file);
  CHECK(message.find(file.string()) != std::string::npos);
  CHECK(message.find("not valid JSON") != std::string::npos);

  json t = tiny();
  t["model"]["type"] = "Foo";
  check_error(t, {"model.type", "expected \"BPE\"", "\"Foo\""});
  t["model"]["type"] = "Unigram";
  check_error(t, {"model.type", "Unigram", "not supported"});
  t = tiny(), t["model"]["merges"] = {"a b", "a z"};
  check_error(t, {"model.merges[1]", "\"z\"", "not in model.vocab"});
  t = tiny(), t["model"]["merges"] = {"b a"};
  check_error(t, {"model.merges[0]", "\"ba\"", "not in model.vocab"});
  t = tiny(), t["model"]["merges"] = {"ab"};
  check_error(t, {"model.merges[0]", "one space", "\"ab\""});
  t = tiny(), t["model"]["vocab"]["c"] = 99;
  check_error(t, {"model.vocab[\"c\"]", "id 99 is out of range", "expected 0 <= id < 11"});
  t = tiny(), t["model"]["vocab"]["c"] = 0;
  check_error(t, {"model.vocab[", "id 0 is also given to another token"});
  t = tiny(), t["model"]["vocab"]["c"] = "four";
  check_error(t, {"model.vocab[\"c\"]", "expected an integer id", "\"four\""});
  t = tiny(), t["model"]["unk_token"] = "<nope>";
  check_error(t, {"model.unk_token", "<nope>"});
  t = tiny(), t["added_tokens"][1]["id"] = 6;
  check_error(t, {"added_tokens[1].id", "id 6 appears twice"});
  t = tiny(), t["added_tokens"][0].erase("content");
  check_error(t, {"added_tokens[0]", "missing \"content\""});
  t = tiny(), t.erase("model");
  check_error(t, {"missing \"model\""});
  t = tiny(), t["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}}}}};
  check_error(t, {"pre_tokenizer.pretokenizers[0].pattern", "(unclosed", "does not compile"});
  t = tiny(), t["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}}}};
  check_error(t, {"normalizer.normalizers[0].type", "NFKC", "not supported"});
  t = tiny(), t["post_processor"] = {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}}, {"special_tokens", json::object()}};
  check_error(t, {"post_processor.single[0]", "\"<s>\" is not defined"});
  t = tiny(), t["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}};
  check_error(t, {"decoder.start", "expected a count"});

  message = error_of(tiny().dump(), R"({"bos_token": "<nope>"})", &file);
  CHECK(message.find(file.string()) != std::string::npos);
  CHECK(message.find("bos_token: \"<nope>\" is not a token") != std::string::npos);
  message = error_of(tiny().dump(), "{bad", &file);
  CHECK(message.find(file.string() + ": not valid JSON") != std::string::npos);
}

TEST_CASE("tokenizer from GGUF: corrupted vocabulary keys name the file and the key") {
  json parse = json::parse(test::read_text(test::fixture("models/tiny-random-llama-2.gguf.json")));
  auto entry = [&](const std::string& key) -> const json& {
    for (const auto& m : parse["metadata"])
      if (m["key"] == key) return m;
    FAIL("no key " << key);
    return parse;
  };
  // A key's record: u64 key length, the key, u32 value type, then the value.
  auto value_offset = [&](const std::string& key) { return entry(key)["record_offset"].get<size_t>() + 8 + key.size() + 4; };
  const std::string good = test::read_text(test::fixture("models/tiny-random-llama-2.gguf"));
  test::ScratchDir dir("tokenizer-gguf");
  auto error_of_patch = [&](size_t at, const std::string& bytes) {
    std::string bad = good;
    bad.replace(at, bytes.size(), bytes);
    test::write_bytes(dir / "bad.gguf", bad);
    try {
      load_tokenizer(dir / "bad.gguf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string file = (dir / "bad.gguf").string();
  std::string m = error_of_patch(value_offset("tokenizer.ggml.model") + 8, "bertx");
  CHECK(m == file + ": tokenizer.ggml.model: \"bertx\" is not supported (\"llama\" and \"gpt2\" are)");
  uint32_t big = 99999;
  m = error_of_patch(value_offset("tokenizer.ggml.bos_token_id"), std::string(reinterpret_cast<const char*>(&big), 4));
  CHECK(m == file + ": tokenizer.ggml.bos_token_id: 99999 is outside the vocabulary [0, 32000)");
  int32_t type = 9;
  m = error_of_patch(entry("tokenizer.ggml.token_type")["payload_offset"].get<size_t>() + 5 * 4, std::string(reinterpret_cast<const char*>(&type), 4));
  CHECK(m == file + ": tokenizer.ggml.token_type[5]: expected a token type 1..6, found 9");
  m = error_of_patch(entry("tokenizer.ggml.model")["record_offset"].get<size_t>() + 8, "tokenizer.ggml.modex");
  CHECK(m == file + ": tokenizer.ggml.model: missing; this GGUF file holds no vocabulary");
}

TEST_CASE("tokenizer: load_tokenizer finds the tokenizer of a model or says why not") {
  CHECK(load_tokenizer(test::fixture("models/tiny-llama"))->vocab_size() == 256);  // config says 256: bytes
  CHECK_THROWS_WITH_AS(load_tokenizer(test::fixture("models/stories260k")), doctest::Contains("no tokenizer.json"), IoError);
  CHECK_THROWS_AS(load_tokenizer("/nonexistent/tokenizer.json"), IoError);
  Written w;
  load(tiny(), w, {{"bos_token", "<x>"}});
  CHECK(load_tokenizer(w.dir / "tokenizer_config.json")->bos() == 6);  // the config's tokenizer.json
  CHECK(load_tokenizer(w.dir.path())->bos() == 6);
  test::ScratchDir spm("tokenizer-spm");
  test::write_bytes(spm / "tokenizer.model", "x");
  CHECK_THROWS_AS(load_tokenizer(spm.path()), UnsupportedError);
}
