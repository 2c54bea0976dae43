// Hugging Face tokenizer.json (+ tokenizer_config.json) → PipelineSpec. Every entry is checked as
// it is read; errors name the file and the JSON path of the entry ("model.merges[12]").
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "text/tokenizer_pipeline.hpp"
#include "text/tokenizer_text.hpp"

namespace moeforge {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct Reader {
  std::string file;

  [[noreturn]] void fail(const std::string& entry, const std::string& what) const { throw FormatError(file + ": " + entry + ": " + what); }
  [[noreturn]] void unsupported(const std::string& entry, const std::string& what) const {
    throw UnsupportedError(file + ": " + entry + ": " + what);
  }
  static std::string shown(const json& j) {
    std::string s = j.dump();
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  }
  const json& need(const json& obj, const char* key, const std::string& entry) const {
    if (!obj.is_object() || !obj.contains(key)) fail(entry, std::string("missing \"") + key + "\"");
    return obj[key];
  }
  std::string string(const json& j, const std::string& entry) const {
    if (!j.is_string()) fail(entry, "expected a string, found " + shown(j));
    return j.get<std::string>();
  }
  bool flag(const json& obj, const char* key, bool fallback, const std::string& entry) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_boolean()) fail(entry + "." + key, "expected true or false, found " + shown(obj[key]));
    return obj[key].get<bool>();
  }
  std::string text(const json& obj, const char* key, const std::string& fallback, const std::string& entry) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    return string(obj[key], entry + "." + key);
  }
  std::string type(const json& obj, const std::string& entry) const { return string(need(obj, "type", entry), entry + ".type"); }
};

// A pattern object {"String": s} or {"Regex": r}, as a regex (literal strings quoted).
std::shared_ptr<SplitRegex> pattern_regex(const Reader& r, const json& pattern, const std::string& entry) {
  if (pattern.is_object() && pattern.contains("Regex"))
    return std::make_shared<SplitRegex>(r.string(pattern["Regex"], entry + ".Regex"), r.file + ": " + entry + ": ");
  if (pattern.is_object() && pattern.contains("String"))
    return std::make_shared<SplitRegex>("\\Q" + r.string(pattern["String"], entry + ".String") + "\\E", r.file + ": " + entry + ": ");
  r.fail(entry, "expected {\"String\": ...} or {\"Regex\": ...}, found " + Reader::shown(pattern));
}

std::vector<std::string> read_vocab(const Reader& r, const json& model, size_t n_added) {
  const json& vocab = r.need(model, "vocab", "model");
  if (!vocab.is_object()) r.fail("model.vocab", "expected an object {token: id}, found " + Reader::shown(vocab));
  const size_t limit = vocab.size() + n_added;  // added tokens may fill holes
  std::vector<std::string> pieces(vocab.size());
  std::vector<bool> used(limit, false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    std::string entry = "model.vocab[" + json(it.key()).dump() + "]";
    if (!it.value().is_number_integer()) r.fail(entry, "expected an integer id, found " + Reader::shown(it.value()));
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= limit)
      r.fail(entry, "id " + std::to_string(id) + " is out of range; expected 0 <= id < " + std::to_string(limit) + " (" +
                        std::to_string(vocab.size()) + " vocabulary entries + " + std::to_string(n_added) + " added tokens)");
    if (used[static_cast<size_t>(id)]) r.fail(entry, "id " + std::to_string(id) + " is also given to another token; expected unique ids");
    used[static_cast<size_t>(id)] = true;
    if (static_cast<size_t>(id) >= pieces.size()) pieces.resize(static_cast<size_t>(id) + 1);
    pieces[static_cast<size_t>(id)] = it.key();
  }
  return pieces;
}

void read_merges(const Reader& r, const json& model, BpeModel& bpe) {
  const json& merges = r.need(model, "merges", "model");
  if (!merges.is_array()) r.fail("model.merges", "expected an array, found " + Reader::shown(merges));
  for (size_t i = 0; i < merges.size(); ++i) {
    std::string entry = "model.merges[" + std::to_string(i) + "]";
    const json& m = merges[i];
    std::string a, b;
    if (m.is_string()) {  // "a b": exactly one space
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail(entry, "expected \"left right\" with one space, found " + Reader::shown(m));
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      r.fail(entry, "expected \"left right\" or [left, right], found " + Reader::shown(m));
    }
    auto ia = bpe.find(a), ib = bpe.find(b);
    if (!ia || !ib) r.fail(entry, Reader::shown(m) + " refers to " + json(!ia ? a : b).dump() + ", which is not in model.vocab");
    if (!bpe.add_merge(*ia, *ib, static_cast<int32_t>(i)))
      r.fail(entry, Reader::shown(m) + " makes " + json(a + b).dump() + ", which is not in model.vocab");
  }
}

std::unique_ptr<BpeModel> read_model(const Reader& r, const json& root, size_t n_added) {
  const json& model = r.need(root, "model", "tokenizer");
  std::string type = model.contains("type") ? r.type(model, "model") : "BPE";
  if (type == "Unigram" || type == "WordPiece" || type == "WordLevel")
    r.unsupported("model.type", "\"" + type + "\" tokenizers are not supported; expected \"BPE\"");
  if (type != "BPE") r.fail("model.type", "expected \"BPE\", found " + json(type).dump());
  BpeOptions o;
  o.byte_fallback = r.flag(model, "byte_fallback", false, "model");
  o.fuse_unk = r.flag(model, "fuse_unk", false, "model");
  o.ignore_merges = r.flag(model, "ignore_merges", false, "model");
  o.continuing_subword_prefix = r.text(model, "continuing_subword_prefix", "", "model");
  o.end_of_word_suffix = r.text(model, "end_of_word_suffix", "", "model");
  std::string unk = r.text(model, "unk_token", "", "model");
  if (!unk.empty()) {
    const json& vocab = r.need(model, "vocab", "model");
    if (!vocab.is_object() || !vocab.contains(unk) || !vocab[unk].is_number_integer())
      r.fail("model.unk_token", json(unk).dump() + " is not in model.vocab");
    o.unk = vocab[unk].get<int32_t>();
  }
  auto bpe = std::make_unique<BpeModel>(read_vocab(r, model, n_added), o);
  read_merges(r, model, *bpe);
  return bpe;
}

std::vector<AddedToken> read_added(const Reader& r, const json& root) {
  std::vector<AddedToken> out;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return out;
  const json& list = root["added_tokens"];
  if (!list.is_array()) r.fail("added_tokens", "expected an array, found " + Reader::shown(list));
  std::set<int32_t> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string entry = "added_tokens[" + std::to_string(i) + "]";
    const json& t = list[i];
    const json& id = r.need(t, "id", entry);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      r.fail(entry + ".id", "expected a non-negative integer, found " + Reader::shown(id));
    AddedToken a;
    a.id = id.get<int32_t>();
    a.content = r.string(r.need(t, "content", entry), entry + ".content");
    if (a.content.empty()) r.fail(entry + ".content", "expected a non-empty string");
    if (!ids.insert(a.id).second) r.fail(entry + ".id", "id " + std::to_string(a.id) + " appears twice in added_tokens");
    a.special = r.flag(t, "special", false, entry);
    a.lstrip = r.flag(t, "lstrip", false, entry);
    a.rstrip = r.flag(t, "rstrip", false, entry);
    a.single_word = r.flag(t, "single_word", false, entry);
    out.push_back(std::move(a));
  }
  return out;
}

void read_normalizer(const Reader& r, const json& n, const std::string& entry, std::vector<NormalizeStep>& out) {
  if (n.is_null()) return;
  std::string type = r.type(n, entry);
  if (type == "Sequence") {
    const json& list = r.need(n, "normalizers", entry);
    for (size_t i = 0; i < list.size(); ++i) read_normalizer(r, list[i], entry + ".normalizers[" + std::to_string(i) + "]", out);
  } else if (type == "Prepend") {
    out.push_back({.kind = NormalizeStep::kPrepend, .text = r.string(r.need(n, "prepend", entry), entry + ".prepend")});
  } else if (type == "Replace") {
    const json& p = r.need(n, "pattern", entry);
    NormalizeStep s{.kind = NormalizeStep::kReplace, .content = r.string(r.need(n, "content", entry), entry + ".content")};
    if (p.is_object() && p.contains("String")) s.text = r.string(p["String"], entry + ".pattern.String");
    else s.regex = pattern_regex(r, p, entry + ".pattern");
    out.push_back(std::move(s));
  } else if (type == "NFC") {
    out.push_back({.kind = NormalizeStep::kNfc});
  } else if (type == "Strip") {
    out.push_back({.kind = NormalizeStep::kStrip, .left = r.flag(n, "strip_left", true, entry), .right = r.flag(n, "strip_right", true, entry)});
  } else {
    r.unsupported(entry + ".type", "normalizer \"" + type + "\" is not supported (Sequence, Prepend, Replace, NFC, Strip are)");
  }
}

SplitBehavior read_behavior(const Reader& r, const json& p, const std::string& entry) {
  std::string b = r.text(p, "behavior", "Isolated", entry);
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  r.unsupported(entry + ".behavior", "split behavior \"" + b + "\" is not supported");
}

PreTokenizeStep::Prepend read_prepend_scheme(const Reader& r, const json& p, const std::string& entry) {
  if (!p.contains("prepend_scheme")) return r.flag(p, "add_prefix_space", true, entry) ? PreTokenizeStep::kAlways : PreTokenizeStep::kNever;
  std::string s = r.string(p["prepend_scheme"], entry + ".prepend_scheme");
  if (s == "always") return PreTokenizeStep::kAlways;
  if (s == "first") return PreTokenizeStep::kFirst;
  if (s == "never") return PreTokenizeStep::kNever;
  r.fail(entry + ".prepend_scheme", "expected \"always\", \"first\" or \"never\", found " + json(s).dump());
}

void read_pre_tokenizer(const Reader& r, const json& p, const std::string& entry, std::vector<PreTokenizeStep>& out) {
  if (p.is_null()) return;
  std::string type = r.type(p, entry);
  auto regex = [&](const std::string& pattern) { return std::make_shared<SplitRegex>(pattern, r.file + ": " + entry + ": "); };
  if (type == "Sequence") {
    const json& list = r.need(p, "pretokenizers", entry);
    for (size_t i = 0; i < list.size(); ++i) read_pre_tokenizer(r, list[i], entry + ".pretokenizers[" + std::to_string(i) + "]", out);
  } else if (type == "Split") {
    out.push_back({.kind = PreTokenizeStep::kSplit, .regex = pattern_regex(r, r.need(p, "pattern", entry), entry + ".pattern"),
                   .behavior = read_behavior(r, p, entry), .invert = r.flag(p, "invert", false, entry)});
  } else if (type == "ByteLevel") {
    PreTokenizeStep s{.kind = PreTokenizeStep::kByteLevel, .add_prefix_space = r.flag(p, "add_prefix_space", true, entry)};
    if (r.flag(p, "use_regex", true, entry)) s.regex = regex(kGpt2SplitPattern);
    out.push_back(std::move(s));
  } else if (type == "Metaspace") {
    out.push_back({.kind = PreTokenizeStep::kMetaspace, .replacement = r.text(p, "replacement", "\xE2\x96\x81", entry),
                   .prepend = read_prepend_scheme(r, p, entry), .split = r.flag(p, "split", true, entry)});
  } else if (type == "Digits") {
    out.push_back({.kind = PreTokenizeStep::kSplit, .regex = regex(r.flag(p, "individual_digits", false, entry) ? "[0-9]" : "[0-9]+")});
  } else if (type == "Whitespace") {
    out.push_back({.kind = PreTokenizeStep::kSplit, .regex = regex(R"(\w+|[^\w\s]+)"), .behavior = SplitBehavior::kRemoved, .invert = true});
  } else if (type == "WhitespaceSplit") {
    out.push_back({.kind = PreTokenizeStep::kSplit, .regex = regex(R"(\s+)"), .behavior = SplitBehavior::kRemoved});
  } else {
    r.unsupported(entry + ".type", "pre-tokenizer \"" + type + "\" is not supported (Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace are)");
  }
}

void read_decoder(const Reader& r, const json& d, const std::string& entry, std::vector<DecodeStep>& out) {
  std::string type = r.type(d, entry);
  if (type == "Sequence") {
    const json& list = r.need(d, "decoders", entry);
    for (size_t i = 0; i < list.size(); ++i) read_decoder(r, list[i], entry + ".decoders[" + std::to_string(i) + "]", out);
  } else if (type == "ByteLevel") {
    out.push_back({.kind = DecodeStep::kByteLevel});
  } else if (type == "Replace") {
    const json& p = r.need(d, "pattern", entry);
    if (!p.is_object() || !p.contains("String")) r.unsupported(entry + ".pattern", "only {\"String\": ...} patterns are supported in decoders");
    out.push_back({.kind = DecodeStep::kReplace, .text = r.string(p["String"], entry + ".pattern.String"),
                   .content = r.string(r.need(d, "content", entry), entry + ".content")});
  } else if (type == "ByteFallback" || type == "Fuse") {
    out.push_back({.kind = type == "Fuse" ? DecodeStep::kFuse : DecodeStep::kByteFallback});
  } else if (type == "Strip") {
    auto count = [&](const char* key) {
      const json& v = r.need(d, key, entry);
      if (!v.is_number_unsigned()) r.fail(entry + "." + key, "expected a count, found " + Reader::shown(v));
      return v.get<int>();
    };
    out.push_back({.kind = DecodeStep::kStrip, .content = r.string(r.need(d, "content", entry), entry + ".content"), .start = count("start"), .stop = count("stop")});
  } else if (type == "Metaspace") {
    out.push_back({.kind = DecodeStep::kMetaspace, .text = r.text(d, "replacement", "\xE2\x96\x81", entry),
                   .strip_first_space = read_prepend_scheme(r, d, entry) != PreTokenizeStep::kNever});
  } else {
    r.unsupported(entry + ".type", "decoder \"" + type + "\" is not supported (Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace are)");
  }
}

struct Specials {
  std::vector<int32_t> prefix, suffix;
};

void read_template(const Reader& r, const json& p, const std::string& entry, Specials& out) {
  const json& single = r.need(p, "single", entry);
  const json& specials = r.need(p, "special_tokens", entry);
  if (!single.is_array()) r.fail(entry + ".single", "expected an array, found " + Reader::shown(single));
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    std::string at = entry + ".single[" + std::to_string(i) + "]";
    if (single[i].contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    std::string name = r.string(r.need(r.need(single[i], "SpecialToken", at), "id", at + ".SpecialToken"), at + ".SpecialToken.id");
    if (!specials.is_object() || !specials.contains(name))
      r.fail(at, "special token " + json(name).dump() + " is not defined in " + entry + ".special_tokens");
    const json& ids = r.need(specials[name], "ids", entry + ".special_tokens[" + json(name).dump() + "]");
    for (const auto& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0)
        r.fail(entry + ".special_tokens[" + json(name).dump() + "].ids", "expected token ids, found " + Reader::shown(id));
      (seen_sequence ? out.suffix : out.prefix).push_back(id.get<int32_t>());
    }
  }
}

void read_post_processor(const Reader& r, const json& p, const std::string& entry, Specials& out) {
  if (p.is_null()) return;
  std::string type = r.type(p, entry);
  if (type == "Sequence") {
    const json& list = r.need(p, "processors", entry);
    for (size_t i = 0; i < list.size(); ++i) read_post_processor(r, list[i], entry + ".processors[" + std::to_string(i) + "]", out);
  } else if (type == "TemplateProcessing") {
    read_template(r, p, entry, out);
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) {  // ["<s>", 0]
      const json& v = r.need(p, key, entry);
      if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) r.fail(entry + "." + key, "expected [token, id], found " + Reader::shown(v));
      (key[0] == 'c' ? out.prefix : out.suffix).push_back(v[1].get<int32_t>());
    }
  } else if (type != "ByteLevel") {
    r.unsupported(entry + ".type", "post-processor \"" + type + "\" is not supported (TemplateProcessing, ByteLevel, Roberta, Bert, Sequence are)");
  }
}

// bos_token / eos_token in tokenizer_config.json: a string, {"content": ...} or null.
std::optional<std::string> config_token(const Reader& r, const json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& v = config[key];
  return r.string(v.is_object() ? r.need(v, "content", key) : v, key);
}

std::optional<int32_t> token_id(const PipelineSpec& s, const std::string& content) {
  for (const auto& a : s.added)
    if (a.content == content) return a.id;
  return s.model->find(content);
}

std::string token_text(const PipelineSpec& s, int32_t id) {
  for (const auto& a : s.added)
    if (a.id == id) return a.content;
  return id >= 0 && id < s.model->size() ? s.model->piece(id) : "";
}

// BOS/EOS from tokenizer_config.json. The fast Llama and Gemma tokenizers of transformers rebuild
// the post-processor from add_bos_token / add_eos_token (defaults true / false), so they win.
void read_config(const fs::path& path, PipelineSpec& s, Specials& specials) {
  if (!fs::exists(path)) {
    if (!specials.prefix.empty()) s.bos = specials.prefix.front();
  } else {
    Reader r{path.string()};
    json config = read_json_file(path);
    if (!config.is_object()) r.fail("tokenizer_config", "expected a JSON object, found " + Reader::shown(config));
    auto lookup = [&](const char* key) -> std::optional<int32_t> {
      auto content = config_token(r, config, key);
      if (!content) return std::nullopt;
      auto id = token_id(s, *content);
      if (!id) r.fail(key, json(*content).dump() + " is not a token of " + s.source);
      return id;
    };
    s.bos = lookup("bos_token");
    s.eos = lookup("eos_token");
    std::string cls = r.text(config, "tokenizer_class", "", "tokenizer_config");
    if (cls.find("Llama") != std::string::npos || cls.find("Gemma") != std::string::npos) {
      specials.prefix.clear();
      specials.suffix.clear();
      if (s.bos && r.flag(config, "add_bos_token", true, "tokenizer_config")) specials.prefix.push_back(*s.bos);
      if (s.eos && r.flag(config, "add_eos_token", false, "tokenizer_config")) specials.suffix.push_back(*s.eos);
    }
  }
  if (s.bos) s.bos_text = token_text(s, *s.bos);
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(const fs::path& path) {
  Reader r{path.string()};
  json root = read_json_file(path);
  if (!root.is_object()) r.fail("tokenizer", "expected a JSON object, found " + Reader::shown(root));
  PipelineSpec s;
  s.source = path.string();
  s.added = read_added(r, root);
  s.model = read_model(r, root, s.added.size());
  auto section = [&](const char* key) { return root.contains(key) ? root[key] : json(); };
  read_normalizer(r, section("normalizer"), "normalizer", s.normalizers);
  read_pre_tokenizer(r, section("pre_tokenizer"), "pre_tokenizer", s.pre_tokenizers);
  if (!section("decoder").is_null()) read_decoder(r, section("decoder"), "decoder", s.decoders.emplace());
  Specials specials;
  read_post_processor(r, section("post_processor"), "post_processor", specials);
  read_config(path.parent_path() / "tokenizer_config.json", s, specials);
  s.prefix_ids = std::move(specials.prefix);
  s.suffix_ids = std::move(specials.suffix);
  auto tok = make_pipeline_tokenizer(std::move(s));
  for (int32_t id : tok->encode_with_specials(""))  // every post-processor id must exist
    if (id >= tok->vocab_size()) r.fail("post_processor", "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(tok->vocab_size()) + ")");
  return tok;
}

}  // namespace moeforge
