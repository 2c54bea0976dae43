// End to end: text data and prompts through tokenizers — `--data` takes text with the model's
// own tokenizer (bytes for the byte-level fixtures) or `--tokenizer`, router data and mergekit
// prompts too; `moeforge tokenize` prints ids and pieces; mismatched tokenizers are refused.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "text/tokenizer_text.hpp"
#include "tests/e2e/cli_runner.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
using json = nlohmann::json;

namespace {

std::string btx(const std::string& name) { return fixture("models/btx-bytes/" + name).string(); }
std::string corpus(const std::string& d, const std::string& f) { return fixture("corpora/" + d + "/" + f + ".txt").string(); }
const std::string kGguf = fixture("models/tiny-random-llama-2.gguf").string();

json eval_json(std::vector<std::string> args) {
  args.insert(args.begin(), {"eval", btx("base"), "--seq-len", "128", "--max-tokens", "8192", "--json", "--quiet"});
  auto r = run_moeforge(args);
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return json::parse(r.out)["files"][0];
}

// A byte-level tokenizer.json whose token for byte b is id 255 - b: text read with it must give
// the same numbers as those ids read from a token-id file.
void write_reversed_tokenizer(const std::filesystem::path& dir) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(static_cast<uint8_t>(b))] = 255 - b;
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json t = {{"version", "1.0"},
            {"added_tokens", json::array()},
            {"pre_tokenizer", byte_level},
            {"decoder", byte_level},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
  write_bytes(dir / "tokenizer.json", t.dump());
}

}  // namespace

TEST_CASE("text --data: byte-level models read text as bytes, .txt and .jsonl alike") {
  ScratchDir dir("text-data");
  json bytes = eval_json({"--bytes", corpus("en", "eval")});
  json text = eval_json({"--data", corpus("en", "eval")});
  CHECK(text["mean_nll"] == bytes["mean_nll"]);
  CHECK(text["windows"] == bytes["windows"]);
  CHECK(text["bits_per_byte"] == bytes["bits_per_byte"]);
  CHECK(bytes["bits_per_byte"] == bytes["bits_per_token"]);

  std::string doc = read_text(corpus("de", "eval")).substr(0, 3000);
  write_bytes(dir / "doc.txt", doc);
  write_bytes(dir / "doc.jsonl", json{{"text", doc}}.dump() + "\n");
  write_bytes(dir / "doc.json", json{{"body", doc}}.dump() + "\n");
  json from_txt = eval_json({"--data", (dir / "doc.txt").string()});
  CHECK(eval_json({"--data", (dir / "doc.jsonl").string()})["mean_nll"] == from_txt["mean_nll"]);
  CHECK(eval_json({"--data", (dir / "doc.json").string(), "--field", "body"})["mean_nll"] == from_txt["mean_nll"]);
  CHECK(eval_json({"--bytes", (dir / "doc.txt").string()})["mean_nll"] == from_txt["mean_nll"]);
}

TEST_CASE("text --data: --tokenizer overrides the model's, and ids must fit the model's vocabulary") {
  ScratchDir dir("text-tokenizer");
  write_reversed_tokenizer(dir.path());
  std::string doc = read_text(corpus("py", "eval")).substr(0, 4000);
  write_bytes(dir / "doc.txt", doc);
  json ids = json::array();
  for (unsigned char c : doc) ids.push_back(255 - c);
  write_bytes(dir / "ids.jsonl", json{{"input_ids", ids}}.dump() + "\n");
  json reversed = eval_json({"--data", (dir / "doc.txt").string(), "--tokenizer", (dir / "tokenizer.json").string()});
  json from_ids = eval_json({"--data", (dir / "ids.jsonl").string()});
  CHECK(reversed["mean_nll"] == from_ids["mean_nll"]);
  CHECK(reversed["bits_per_byte"] == reversed["bits_per_token"]);  // one byte per token
  CHECK(from_ids["bits_per_byte"].is_null());                       // token ids: no text to count
  CHECK(reversed["mean_nll"] != eval_json({"--data", (dir / "doc.txt").string()})["mean_nll"]);

  // A 32000-token Llama-2 vocabulary for a 256-token model: refused, naming the file and the token.
  auto r = run_moeforge({"eval", btx("base"), "--data", (dir / "doc.txt").string(), "--tokenizer", kGguf, "--quiet"});
  CHECK(r.status != 0);
  CHECK(r.err.find((dir / "doc.txt").string() + ": the tokenizer gives token id") != std::string::npos);
  CHECK(r.err.find("outside the model's vocabulary [0, 256)") != std::string::npos);
  CHECK(r.err_lines() == 1);
  r = run_moeforge({"eval", btx("base"), "--data", (dir / "doc.txt").string(), "--tokenizer", (dir / "missing.json").string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("missing.json: no such file") != std::string::npos);
}

TEST_CASE("text router data: compose from text files equals compose from the same bytes") {
  ScratchDir dir("text-router");
  auto compose = [&](const std::string& out, const std::string& option) {
    std::vector<std::string> a = {"compose", "--expert", btx("expert-en"), "--expert", btx("expert-c"), (dir / out).string(), "--router",
                                  "centroid", "--seq-len", "128", "--max-tokens", "4096", "--quiet", option};
    for (const char* d : {"en", "c"}) a.push_back(corpus(d, "calib"));
    auto r = run_moeforge(a);
    REQUIRE_MESSAGE(r.status == 0, r.err);
  };
  compose("bytes", "--router-bytes");
  compose("text", "--router-data");
  auto r = run_moeforge({"diff", (dir / "text").string(), (dir / "bytes").string(), "--json"});
  REQUIRE(r.status == 0);
  auto d = json::parse(r.out);
  CHECK(d["tensors"].size() == 29);
  for (const auto& t : d["tensors"]) CHECK(t["equal"] == true);
}

TEST_CASE("tokenize: ids, pieces and specials of a model's tokenizer") {
  auto r = run_moeforge({"tokenize", kGguf, "Hello world", "--json"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto j = json::parse(r.out);
  CHECK(j["ids"] == json::array({15043, 3186}));
  CHECK(j["pieces"] == json::array({"\u2581Hello", "\u2581world"}));
  CHECK(j["decoded"] == "Hello world");
  CHECK(j["bos"]["id"] == 1);
  CHECK(j["vocab_size"] == 32000);
  r = run_moeforge({"tokenize", kGguf, "Hello world", "--specials", "--json"});
  CHECK(json::parse(r.out)["ids"] == json::array({1, 15043, 3186}));
  r = run_moeforge({"tokenize", btx("base"), "hi\n"});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("3 tokens (vocabulary 256)") == 0);
  CHECK(r.out.find("\"<0x0A>\"") != std::string::npos);
  r = run_moeforge({"tokenize", fixture("models/btx-bytes").string(), "hi"});
  CHECK(r.status != 0);
  CHECK(r.err.find("no tokenizer.json") != std::string::npos);
}
