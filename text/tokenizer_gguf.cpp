// The vocabulary stored in a GGUF file (tokenizer.ggml.*) → PipelineSpec, with llama.cpp's
// semantics: model "llama" is SentencePiece (score-ordered merges, "▁" for spaces, one leading
// "▁", <0xNN> byte fallback); model "gpt2" is byte-level BPE with ranked merges and a split regex
// chosen by tokenizer.ggml.pre. Control, user-defined and unknown tokens are split out of the
// text like Hugging Face's added tokens.
#include <map>

#include "core/error.hpp"
#include "formats/gguf.hpp"
#include "text/tokenizer_pipeline.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace {

using ojson = nlohmann::ordered_json;

enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Keys {
  const GgufFile& g;
  std::string file;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const { throw FormatError(file + ": " + key + ": " + what); }
  const ojson* find(const std::string& key) const { return g.find_value(key); }
  std::string type_of(const std::string& key) const {
    const auto& e = g.metadata.at(key);
    return e["type"] == "ARRAY" ? "ARRAY of " + e["elem_type"].get<std::string>() : e["type"].get<std::string>();
  }
  // An array of n values of one kind (n = 0: any length).
  const ojson& array(const std::string& key, const char* elem_kind, size_t n) const {
    const ojson* v = find(key);
    if (v == nullptr) fail(key, "missing; expected an array of " + std::string(elem_kind));
    if (!v->is_array()) fail(key, "expected an array of " + std::string(elem_kind) + ", found " + type_of(key));
    if (n != 0 && v->size() != n) fail(key, "has " + std::to_string(v->size()) + " entries; expected " + std::to_string(n) + " (one per token)");
    return *v;
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    const ojson* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) fail(key, "expected a STRING, found " + type_of(key));
    return v->get<std::string>();
  }
  bool flag(const std::string& key, bool fallback) const {
    const ojson* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(key, "expected a BOOL, found " + type_of(key));
    return v->get<bool>();
  }
  std::optional<int32_t> token_id(const std::string& key, size_t n) const {
    const ojson* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) fail(key, "expected an integer token id, found " + type_of(key));
    int64_t id = v->get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= n) fail(key, std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(n) + ")");
    return static_cast<int32_t>(id);
  }
};

std::vector<std::string> read_tokens(const Keys& k) {
  const ojson& list = k.array("tokenizer.ggml.tokens", "strings", 0);
  std::vector<std::string> tokens;
  tokens.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string()) k.fail("tokenizer.ggml.tokens[" + std::to_string(i) + "]", "expected a string");
    tokens.push_back(list[i].get<std::string>());
  }
  if (tokens.empty()) k.fail("tokenizer.ggml.tokens", "is empty; expected the vocabulary");
  return tokens;
}

std::vector<AddedToken> read_added(const Keys& k, const std::vector<std::string>& tokens) {
  std::vector<AddedToken> added;
  if (k.find("tokenizer.ggml.token_type") == nullptr) return added;
  const ojson& types = k.array("tokenizer.ggml.token_type", "integers", tokens.size());
  for (size_t i = 0; i < types.size(); ++i) {
    if (!types[i].is_number_integer() || types[i].get<int64_t>() < kNormal || types[i].get<int64_t>() > kByte)
      k.fail("tokenizer.ggml.token_type[" + std::to_string(i) + "]", "expected a token type 1..6, found " + types[i].dump());
    int t = types[i].get<int>();
    if ((t == kUnknown || t == kControl || t == kUserDefined) && !tokens[i].empty())
      added.push_back({.content = tokens[i], .id = static_cast<int32_t>(i), .special = t != kUserDefined});
  }
  return added;
}

const char* split_pattern(const Keys& k) {
  static const std::map<std::string, const char*> kPre = {
      {"default", kGpt2SplitPattern},    {"gpt-2", kGpt2SplitPattern},     {"gpt2", kGpt2SplitPattern},
      {"llama-bpe", kLlama3SplitPattern}, {"llama3", kLlama3SplitPattern}, {"llama-v3", kLlama3SplitPattern},
      {"smaug-bpe", kLlama3SplitPattern}, {"qwen2", kQwen2SplitPattern},    {"deepseek-r1-qwen", kQwen2SplitPattern},
      {"gpt-4o", kGpt4oSplitPattern},
  };
  std::string pre = k.string("tokenizer.ggml.pre", "default");
  auto it = kPre.find(pre);
  if (it == kPre.end())
    throw UnsupportedError(k.file + ": tokenizer.ggml.pre: \"" + pre + "\" is not supported (default, gpt-2, llama-bpe, qwen2, gpt-4o and their aliases are)");
  return it->second;
}

void spm_pipeline(const Keys& k, std::vector<std::string> tokens, PipelineSpec& s) {
  size_t n = tokens.size();
  BpeOptions o{.byte_fallback = true, .unk = k.token_id("tokenizer.ggml.unknown_token_id", n)};
  s.model = std::make_unique<BpeModel>(std::move(tokens), o);
  std::vector<float> scores(n, 0.0f);  // llama.cpp: scores are optional
  if (k.find("tokenizer.ggml.scores") != nullptr) {
    const ojson& list = k.array("tokenizer.ggml.scores", "floats", n);
    for (size_t i = 0; i < n; ++i) {
      if (!list[i].is_number()) k.fail("tokenizer.ggml.scores[" + std::to_string(i) + "]", "expected a number, found " + list[i].dump());
      scores[i] = list[i].get<float>();
    }
  }
  s.model->set_scores(std::move(scores));
  const std::string space = "\xE2\x96\x81";
  bool prefix = k.flag("tokenizer.ggml.add_space_prefix", true);
  if (prefix) s.normalizers.push_back({.kind = NormalizeStep::kPrepend, .text = space});
  s.normalizers.push_back({.kind = NormalizeStep::kReplace, .text = " ", .content = space});
  auto& d = s.decoders.emplace();
  d.push_back({.kind = DecodeStep::kReplace, .text = space, .content = " "});
  d.push_back({.kind = DecodeStep::kByteFallback});
  d.push_back({.kind = DecodeStep::kFuse});
  if (prefix) d.push_back({.kind = DecodeStep::kStrip, .content = " ", .start = 1});
}

void bpe_pipeline(const Keys& k, std::vector<std::string> tokens, PipelineSpec& s) {
  const char* pattern = split_pattern(k);
  s.model = std::make_unique<BpeModel>(std::move(tokens), BpeOptions{});
  const ojson& merges = k.array("tokenizer.ggml.merges", "strings", 0);
  for (size_t i = 0; i < merges.size(); ++i) {
    std::string key = "tokenizer.ggml.merges[" + std::to_string(i) + "]";
    if (!merges[i].is_string()) k.fail(key, "expected a string \"left right\"");
    std::string m = merges[i].get<std::string>();
    size_t sp = m.find(' ');
    if (sp == std::string::npos) k.fail(key, "expected \"left right\", found " + ojson(m).dump());
    auto a = s.model->find(m.substr(0, sp)), b = s.model->find(m.substr(sp + 1));
    if (!a || !b) k.fail(key, ojson(m).dump() + " refers to a token that is not in tokenizer.ggml.tokens");
    if (!s.model->add_merge(*a, *b, static_cast<int32_t>(i)))
      k.fail(key, ojson(m).dump() + " makes a token that is not in tokenizer.ggml.tokens");
  }
  s.pre_tokenizers.push_back({.kind = PreTokenizeStep::kSplit, .regex = std::make_shared<SplitRegex>(pattern, k.file + ": tokenizer.ggml.pre: ")});
  s.pre_tokenizers.push_back({.kind = PreTokenizeStep::kByteLevel});
  s.decoders.emplace().push_back({.kind = DecodeStep::kByteLevel});
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::filesystem::path& path) {
  GgufFile g = read_gguf(path);
  Keys k{g, path.string()};
  std::string model = k.string("tokenizer.ggml.model", "");
  if (model.empty()) k.fail("tokenizer.ggml.model", "missing; this GGUF file holds no vocabulary");
  auto tokens = read_tokens(k);
  size_t n = tokens.size();
  // A byte vocabulary (what moeforge writes for byte-level models): id i is byte i, both ways.
  bool bytes = model == "llama" && n >= 256;
  for (size_t i = 0; bytes && i < 256; ++i) bytes = parse_byte_piece(tokens[i]) == static_cast<uint8_t>(i);
  for (size_t i = 256; bytes && i < n; ++i) bytes = tokens[i].rfind("[PAD", 0) == 0;
  if (bytes) return byte_tokenizer();
  PipelineSpec s;
  s.source = path.string();
  s.added = read_added(k, tokens);
  bool spm = model == "llama";
  if (spm) spm_pipeline(k, std::move(tokens), s);
  else if (model == "gpt2") bpe_pipeline(k, std::move(tokens), s);
  else throw UnsupportedError(k.file + ": tokenizer.ggml.model: \"" + model + "\" is not supported (\"llama\" and \"gpt2\" are)");
  s.bos = k.token_id("tokenizer.ggml.bos_token_id", n);
  s.eos = k.token_id("tokenizer.ggml.eos_token_id", n);
  if (s.bos) s.bos_text = s.model->piece(*s.bos);
  if (s.bos && k.flag("tokenizer.ggml.add_bos_token", spm)) s.prefix_ids.push_back(*s.bos);
  if (s.eos && k.flag("tokenizer.ggml.add_eos_token", false)) s.suffix_ids.push_back(*s.eos);
  return make_pipeline_tokenizer(std::move(s));
}

}  // namespace moeforge
