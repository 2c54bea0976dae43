// moeforge tokenize MODEL "text": the ids and pieces a model's tokenizer gives (a debugging aid).
#include <cstdio>

#include "cli/verb.hpp"
#include "text/tokenizer.hpp"

namespace moeforge {
namespace {

using ojson = nlohmann::ordered_json;

// Pieces and texts may be invalid UTF-8 (a raw byte piece, odd command-line text): printed with
// U+FFFD in its place, as emit() does for --json.
std::string quoted(const ojson& s) { return s.dump(-1, ' ', false, ojson::error_handler_t::replace); }

void print_tokens(const ojson& r) {
  std::string head = std::to_string(r["ids"].size()) + " tokens (vocabulary " + std::to_string(r["vocab_size"].get<int64_t>());
  for (auto [key, label] : {std::pair{"bos", "BOS"}, std::pair{"eos", "EOS"}})
    if (!r[key].is_null()) head += std::string(", ") + label + " " + std::to_string(r[key]["id"].get<int>()) + " " + quoted(r[key]["piece"]);
  std::printf("%s)\n", head.c_str());
  for (size_t i = 0; i < r["ids"].size(); ++i) std::printf("%8d  %s\n", r["ids"][i].get<int>(), quoted(r["pieces"][i]).c_str());
}

ojson special(const Tokenizer& tok, std::optional<int32_t> id) {
  if (!id) return nullptr;
  return {{"id", *id}, {"piece", tok.piece(*id)}};
}

}  // namespace

Verb tokenize_verb() {
  using T = ParamType;
  Verb v;
  v.name = "tokenize";
  v.description = "show the token ids and pieces a model's tokenizer gives for a text (debugging aid)";
  v.params = with({
      {.name = "model", .type = T::kPath, .help = "model directory, tokenizer.json or .gguf file", .positional = true, .required = true},
      {.name = "text", .type = T::kString, .help = "the text to tokenize", .positional = true, .required = true},
      {.name = "specials", .type = T::kFlag, .help = "add the post-processor's special tokens (e.g. BOS), as HF's tokenizer(text)"},
  }, output_params());
  v.run = [](const ParamValues& p, const RunContext&) {
    auto tok = load_tokenizer(p.str("model"));
    std::string text = p.str("text");
    auto ids = p.flag("specials") ? tok->encode_with_specials(text) : tok->encode(text);
    ojson pieces = ojson::array();
    for (int32_t id : ids) pieces.push_back(tok->piece(id));
    ojson report = {{"model", p.str("model")},
                    {"text", text},
                    {"specials", p.flag("specials")},
                    {"vocab_size", tok->vocab_size()},
                    {"bos", special(*tok, tok->bos())},
                    {"eos", special(*tok, tok->eos())},
                    {"n_tokens", ids.size()},
                    {"ids", ids},
                    {"pieces", pieces},
                    {"decoded", tok->decode(ids)}};
    emit(p, report, [&] { print_tokens(report); });
    return 0;
  };
  return v;
}

}  // namespace moeforge
