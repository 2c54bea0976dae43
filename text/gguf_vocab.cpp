#include "text/gguf_vocab.hpp"

#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "formats/gguf.hpp"
#include "text/tokenizer_regex.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

ojson array(const char* elem, ojson values) { return {{"type", "ARRAY"}, {"elem_type", elem}, {"value", std::move(values)}}; }
ojson u32(int64_t v) { return {{"type", "UINT32"}, {"value", v}}; }
ojson flag(bool v) { return {{"type", "BOOL"}, {"value", v}}; }
ojson str(const std::string& v) { return {{"type", "STRING"}, {"value", v}}; }

std::string pad_piece(int64_t i) { return "[PAD" + std::to_string(i) + "]"; }

// A token given as "text" or {"content": "text"} in tokenizer_config.json.
std::optional<std::string> token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

struct Vocab {
  std::vector<std::string> pieces;
  std::vector<int> types;
  std::unordered_map<std::string, int64_t> ids;
};

Vocab read_pieces(const json& tj, int64_t vocab_size, const std::string& file) {
  Vocab v;
  v.pieces.assign(static_cast<size_t>(vocab_size), "");
  v.types.assign(static_cast<size_t>(vocab_size), kNormal);
  auto put = [&](const std::string& piece, const json& id, int type) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) throw FormatError(file + ": token " + json(piece).dump() + " has id " + id.dump());
    int64_t i = id.get<int64_t>();
    if (i >= vocab_size)
      throw MismatchError(file + ": token " + json(piece).dump() + " has id " + std::to_string(i) + " but the model's vocab_size is " +
                          std::to_string(vocab_size) + "; hint: the tokenizer does not belong to this model");
    v.pieces[static_cast<size_t>(i)] = piece;
    v.types[static_cast<size_t>(i)] = type;
  };
  for (const auto& [piece, id] : tj["model"]["vocab"].items()) put(piece, id, kNormal);
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
    for (const auto& a : tj["added_tokens"])
      if (a.contains("content") && a["content"].is_string() && a.contains("id"))
        put(a["content"].get<std::string>(), a["id"], a.value("special", false) ? kControl : kUserDefined);
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    if (v.pieces[i].empty()) v.pieces[i] = pad_piece(static_cast<int64_t>(i)), v.types[i] = kUnused;
    if (!v.ids.emplace(v.pieces[i], static_cast<int64_t>(i)).second)
      throw FormatError(file + ": token " + json(v.pieces[i]).dump() + " appears twice; llama.cpp needs unique token strings");
  }
  return v;
}

std::vector<std::string> read_merges(const json& model) {
  std::vector<std::string> out;
  if (!model.contains("merges") || !model["merges"].is_array()) return out;
  for (const auto& m : model["merges"]) {
    if (m.is_string()) out.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  return out;
}

bool mentions_type(const json& node, const std::string& type) {
  if (node.is_object()) {
    if (node.value("type", std::string()) == type) return true;
    for (const auto& [k, v] : node.items())
      if (mentions_type(v, type)) return true;
  } else if (node.is_array()) {
    for (const auto& v : node)
      if (mentions_type(v, type)) return true;
  }
  return false;
}

void find_split_regex(const json& node, std::string* out) {
  if (node.is_object()) {
    if (node.value("type", std::string()) == "Split" && node.contains("pattern") && node["pattern"].contains("Regex") && out->empty())
      *out = node["pattern"]["Regex"].get<std::string>();
    for (const auto& [k, v] : node.items()) find_split_regex(v, out);
  } else if (node.is_array()) {
    for (const auto& v : node) find_split_regex(v, out);
  }
}

// llama.cpp's pre-tokenizer name, from the split regex tokenizer.json uses.
std::string pre_tokenizer_name(const json& tj, std::vector<std::string>* notes) {
  std::string regex;
  find_split_regex(tj.value("pre_tokenizer", json()), &regex);
  if (regex == kLlama3SplitPattern) return "llama-bpe";
  if (regex == kQwen2SplitPattern) return "qwen2";
  if (regex == kGpt4oSplitPattern) return "gpt-4o";  // gpt-oss
  if (regex == kGpt2SplitPattern || regex.empty()) return "gpt-2";
  notes->push_back("tokenizer.json splits text with a regex llama.cpp has no name for; tokenizer.ggml.pre is \"default\", so llama.cpp may "
                   "split text differently (token ids given directly are unaffected)");
  return "default";
}

void gpt2_vocab(ojson& m, const json& tj, Vocab& v, std::vector<std::string>* notes) {
  m["tokenizer.ggml.model"] = str("gpt2");
  m["tokenizer.ggml.pre"] = str(pre_tokenizer_name(tj, notes));
  m["tokenizer.ggml.tokens"] = array("STRING", v.pieces);
  m["tokenizer.ggml.token_type"] = array("INT32", v.types);
  m["tokenizer.ggml.merges"] = array("STRING", read_merges(tj["model"]));
}

// SentencePiece-style BPE: llama.cpp merges the adjacent pair whose result scores highest, so a
// token made by merge rank r scores −r (the same order as Hugging Face's ranked merges).
void spm_vocab(ojson& m, const json& tj, Vocab& v) {
  std::vector<float> scores(v.pieces.size(), 0.0f);
  std::vector<bool> scored(v.pieces.size(), false);
  auto merges = read_merges(tj["model"]);
  for (size_t r = 0; r < merges.size(); ++r) {
    size_t sp = merges[r].find(' ');
    if (sp == std::string::npos) continue;
    auto it = v.ids.find(merges[r].substr(0, sp) + merges[r].substr(sp + 1));
    if (it == v.ids.end() || scored[static_cast<size_t>(it->second)]) continue;
    scores[static_cast<size_t>(it->second)] = -static_cast<float>(r);
    scored[static_cast<size_t>(it->second)] = true;
  }
  std::string unk = tj["model"].value("unk_token", std::string());
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    if (v.types[i] == kNormal && parse_byte_piece(v.pieces[i])) v.types[i] = kByte;
    if (!unk.empty() && v.pieces[i] == unk) v.types[i] = kUnknown;
    // Tokens no merge makes stay out of reach, as in Hugging Face's BPE (single characters need no merge).
    if (!scored[i] && v.types[i] == kNormal && utf8_char_len(v.pieces[i], 0) < v.pieces[i].size()) scores[i] = -1e9f;
  }
  bool prefix = tj.dump().find("\"prepend\":\"\xE2\x96\x81\"") != std::string::npos ||
                (mentions_type(tj.value("pre_tokenizer", json()), "Metaspace") && tj.dump().find("\"prepend_scheme\":\"never\"") == std::string::npos);
  m["tokenizer.ggml.model"] = str("llama");
  m["tokenizer.ggml.pre"] = str("default");
  m["tokenizer.ggml.tokens"] = array("STRING", v.pieces);
  m["tokenizer.ggml.scores"] = array("FLOAT32", scores);
  m["tokenizer.ggml.token_type"] = array("INT32", v.types);
  m["tokenizer.ggml.add_space_prefix"] = flag(prefix);
}

// Special token ids and flags from tokenizer_config.json (or config.json ids), as SpecialVocab does.
void special_tokens(ojson& m, const fs::path& dir, const json& tj, const Vocab& v, const json& config) {
  json tc = fs::is_regular_file(dir / "tokenizer_config.json") ? read_json_file(dir / "tokenizer_config.json") : json::object();
  std::map<std::string, int64_t> ids;
  for (const char* kind : {"bos", "eos", "unk", "pad"}) {
    std::string key = std::string(kind) + "_token";
    if (auto text = tc.contains(key) ? token_text(tc[key]) : std::nullopt) {
      auto it = v.ids.find(*text);
      if (it != v.ids.end()) ids[kind] = it->second;
    }
    std::string id_key = std::string(kind) + "_token_id";
    if (!ids.count(kind) && config.contains(id_key) && config[id_key].is_number_integer()) ids[kind] = config[id_key].get<int64_t>();
  }
  for (const auto& [kind, id] : ids)
    if (id >= 0 && id < static_cast<int64_t>(v.pieces.size())) m["tokenizer.ggml." + kind + "_token_id"] = u32(id);
  auto template_adds = [&](const char* side, const char* kind) {
    const json& pp = tj.value("post_processor", json());
    if (!pp.is_object() || pp.value("type", std::string()) != "TemplateProcessing" || !pp.contains("single") || !ids.count(kind)) return false;
    const json& single = pp["single"];
    const json& e = std::string(side) == "front" ? single.front() : single.back();
    return e.contains("SpecialToken") && e["SpecialToken"].value("id", std::string()) == v.pieces[static_cast<size_t>(ids[kind])];
  };
  m["tokenizer.ggml.add_bos_token"] = flag(tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean() ? tc["add_bos_token"].get<bool>()
                                                                                                            : template_adds("front", "bos"));
  m["tokenizer.ggml.add_eos_token"] = flag(tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean() ? tc["add_eos_token"].get<bool>()
                                                                                                            : template_adds("back", "eos"));
  if (tc.contains("chat_template") && tc["chat_template"].is_string()) m["tokenizer.chat_template"] = str(tc["chat_template"].get<std::string>());
  else if (fs::is_regular_file(dir / "chat_template.jinja")) m["tokenizer.chat_template"] = str(read_text_file(dir / "chat_template.jinja"));
}

ojson from_tokenizer_json(const fs::path& dir, const json& config, int64_t vocab_size, std::vector<std::string>* notes) {
  const fs::path file = dir / "tokenizer.json";
  json tj = read_json_file(file);
  if (!tj.contains("model") || !tj["model"].is_object() || tj["model"].value("type", std::string()) != "BPE" || !tj["model"].contains("vocab"))
    throw UnsupportedError(file.string() + ": model: only BPE tokenizers can be written to GGUF (WordPiece, Unigram and WordLevel are not)");
  Vocab v = read_pieces(tj, vocab_size, file.string());
  ojson m = ojson::object();
  bool byte_level = mentions_type(tj.value("pre_tokenizer", json()), "ByteLevel") || mentions_type(tj.value("decoder", json()), "ByteLevel");
  if (tj["model"].value("byte_fallback", false)) {
    spm_vocab(m, tj, v);
    notes->push_back("SentencePiece-style vocabulary written with scores = minus the merge rank (llama.cpp merges by score)");
  } else if (byte_level) {
    gpt2_vocab(m, tj, v, notes);
  } else {
    throw UnsupportedError(file.string() + ": a BPE tokenizer that is neither byte-level nor SentencePiece-style (byte_fallback) cannot be written to GGUF");
  }
  special_tokens(m, dir, tj, v, config);
  return m;
}

}  // namespace

ojson gguf_byte_vocabulary(const json& config, int64_t vocab_size) {
  ojson tokens = ojson::array(), scores = ojson::array(), types = ojson::array();
  for (int64_t i = 0; i < vocab_size; ++i) {
    tokens.push_back(i < 256 ? byte_piece(static_cast<uint8_t>(i)) : pad_piece(i));
    scores.push_back(0.0f);
    types.push_back(i < 256 ? kByte : kUnused);
  }
  ojson m = {{"tokenizer.ggml.model", str("llama")}, {"tokenizer.ggml.pre", str("default")}};
  m["tokenizer.ggml.tokens"] = array("STRING", tokens);
  m["tokenizer.ggml.scores"] = array("FLOAT32", scores);
  m["tokenizer.ggml.token_type"] = array("INT32", types);
  for (const char* kind : {"bos", "eos"}) {
    std::string key = std::string(kind) + "_token_id";
    if (config.contains(key) && config[key].is_number_integer() && config[key].get<int64_t>() >= 0 && config[key].get<int64_t>() < vocab_size)
      m["tokenizer.ggml." + key] = u32(config[key].get<int64_t>());
  }
  m["tokenizer.ggml.add_bos_token"] = flag(false);
  m["tokenizer.ggml.add_eos_token"] = flag(false);
  m["tokenizer.ggml.add_space_prefix"] = flag(false);
  return m;
}

ojson gguf_vocabulary(const fs::path& source, const json& config, int64_t vocab_size, std::vector<std::string>* notes) {
  if (fs::is_regular_file(source) && looks_like_gguf(source)) {
    GgufFile g = read_gguf(source);
    ojson m = ojson::object();
    for (const auto& [key, e] : g.metadata.items())
      if (key.rfind("tokenizer.", 0) == 0) m[key] = e;
    if (!m.empty()) return m;
  }
  fs::path dir = fs::is_directory(source) ? source : source.parent_path();
  if (fs::is_regular_file(dir / "tokenizer.json")) return from_tokenizer_json(dir, config, vocab_size, notes);
  if (vocab_size != 256)
    notes->push_back("no tokenizer files: the GGUF vocabulary is ids 0-255 as bytes and the other " + std::to_string(std::max<int64_t>(0, vocab_size - 256)) +
                     " ids unused; give token ids, not text, to llama.cpp");
  return gguf_byte_vocabulary(config, vocab_size);
}

}  // namespace moeforge
