// Text data files → token windows with the Llama-2 tokenizer of the GGUF fixture (BOS 1 added to
// each document, EOS 2 between documents): .txt whole or by line, .jsonl text fields and chat
// messages, packing, caps, errors; mergekit-style prompt tokenization.
#include <doctest/doctest.h>

#include "core/error.hpp"
#include "text/text_data.hpp"
#include "text/tokenizer.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

const Tokenizer& llama2() {
  static auto tok = load_tokenizer(test::fixture("models/tiny-random-llama-2.gguf"));
  return *tok;
}

DataFile load(const test::ScratchDir& dir, const std::string& name, const std::string& content, TextOptions o = {}) {
  test::write_bytes(dir / name, content);
  return load_text(dir / name, llama2(), o);
}

std::string error_of(const test::ScratchDir& dir, const std::string& name, const std::string& content, TextOptions o = {}) {
  try {
    load(dir, name, content, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Ids window(const DataFile& f, size_t i) {
  const auto& w = f.batch.windows.at(i);
  return {f.batch.tokens.begin() + w.offset, f.batch.tokens.begin() + w.offset + w.length};
}

}  // namespace

TEST_CASE("tokenized text data: .txt is one document, or one per line, packed into windows") {
  test::ScratchDir dir("text-data");
  TextOptions o;
  o.seq_len = 2;
  DataFile f = load(dir, "a.txt", "Hello world", o);
  CHECK(f.kind == DataKind::kTokenIds);
  CHECK(f.path == (dir / "a.txt").string());
  CHECK(f.batch.tokens == Ids{1, 15043, 3186});  // BOS added as HF's tokenizer(text) does
  REQUIRE(f.batch.windows.size() == 2);
  CHECK(window(f, 0) == Ids{1, 15043});
  CHECK(window(f, 1) == Ids{3186});

  o.split_lines = true;
  o.seq_len = 512;
  f = load(dir, "b.txt", "Hello world\n\n  \nHello\r\n", o);
  CHECK(f.batch.tokens == Ids{1, 15043, 3186, 2, 1, 15043});  // EOS between documents
  CHECK(f.batch.windows.size() == 1);
  o.max_tokens = 4;
  CHECK(load(dir, "b.txt", "Hello world\nHello\nHello\n", o).batch.tokens == Ids{1, 15043, 3186, 2});

  o = {};
  std::string doc = "Hello world\nHello";  // a whole file, newlines included
  CHECK(load(dir, "c.txt", doc, o).batch.tokens == llama2().encode_with_specials(doc));
}

TEST_CASE("tokenized text data: .jsonl text fields and chat messages") {
  test::ScratchDir dir("text-data");
  std::string jsonl = R"({"text": "Hello world"})" "\n\n"
                      R"({"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": [{"type": "text", "text": "Hello world"}]}]})" "\n";
  test::write_bytes(dir / "d.jsonl", jsonl);
  auto docs = read_text_documents(dir / "d.jsonl", {});
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "Hello world");
  CHECK(docs[1] == "user: Hello\nassistant: Hello world");
  Ids expected = {1, 15043, 3186, 2};
  Ids chat = llama2().encode_with_specials(docs[1]);
  expected.insert(expected.end(), chat.begin(), chat.end());
  CHECK(load(dir, "d.jsonl", jsonl).batch.tokens == expected);

  TextOptions templated;  // a per-message template; "\n" written as backslash-n, as on a command line
  templated.chat_template = "<s>[{role}] {content}\\n";
  docs = read_text_documents(dir / "d.jsonl", templated);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "Hello world");  // text records are not templated
  CHECK(docs[1] == "<s>[user] Hello\n<s>[assistant] Hello world\n");
  CHECK(llama2().encode(docs[1])[0] == 1);  // special tokens in the template are matched

  TextOptions o;
  o.field = "body";
  CHECK(load(dir, "e.jsonl", R"({"body": "Hello", "text": 3})", o).batch.tokens == Ids{1, 15043});
}

TEST_CASE("tokenized text data: bad files and options name the file and line") {
  test::ScratchDir dir("text-data");
  std::string file = (dir / "f.jsonl").string();
  CHECK(error_of(dir, "f.jsonl", "{\"text\": \"a\"}\n{oops\n").find(file + ":2: not valid JSON") == 0);
  CHECK(error_of(dir, "f.jsonl", "{\"content\": \"a\"}\n") == file + ":1: expected a string field \"text\" or a \"messages\" list (hint: --field NAME)");
  CHECK(error_of(dir, "f.jsonl", "{\"input_ids\": [1, 2]}\n").find("holds token ids, not text") != std::string::npos);
  CHECK(error_of(dir, "f.jsonl", "{\"text\": [1]}\n").find(file + ":1: field \"text\" must be a string") == 0);
  CHECK(error_of(dir, "f.jsonl", "{\"messages\": [{\"content\": \"a\"}]}\n").find(file + ":1: messages[0]: expected {\"role\"") == 0);
  CHECK(error_of(dir, "g.txt", "") == (dir / "g.txt").string() + ": no tokens (empty file?)");
  TextOptions o;
  o.seq_len = 0;
  CHECK_THROWS_AS(load(dir, "h.txt", "Hello", o), UsageError);
  CHECK_THROWS_AS(load_text(dir / "missing.txt", llama2(), {}), IoError);
}

TEST_CASE("tokenized prompts: BOS text prefixed, matched as the BOS token (mergekit-moe)") {
  CHECK(tokenize_prompt(llama2(), "Hello world") == Ids{1, 15043, 3186});
  auto bytes = byte_tokenizer();
  CHECK(tokenize_prompt(*bytes, "hi") == Ids{104, 105});  // no BOS: the prompt alone
}

TEST_CASE("tokenized text data: byte tokenizer streams the bytes without separators") {
  test::ScratchDir dir("text-data");
  test::write_bytes(dir / "a.txt", "ab\ncd\n");
  TextOptions o;
  o.split_lines = true;
  auto bytes = byte_tokenizer();
  CHECK(load_text(dir / "a.txt", *bytes, o).batch.tokens == Ids{97, 98, 99, 100});
}
