#include "formats/module_order.hpp"

#include <cctype>
#include <string>
#include <unordered_map>
#include <vector>

namespace moeforge {
namespace {

// Rank of a dotted name segment among its siblings; unknown segments sort after known ones.
int segment_rank(std::string_view s) {
  static const std::unordered_map<std::string_view, int> kRanks = {
      {"model", 0}, {"lm_head", 1},
      {"embed_tokens", 0}, {"layers", 1}, {"norm", 2},
      {"self_attn", 0}, {"mlp", 1}, {"block_sparse_moe", 1}, {"input_layernorm", 2}, {"post_attention_layernorm", 3},
      {"q_proj", 0}, {"q_a_proj", 1}, {"q_a_layernorm", 2}, {"q_b_proj", 3}, {"k_proj", 4}, {"kv_a_proj_with_mqa", 5},
      {"kv_a_layernorm", 6}, {"kv_b_proj", 7}, {"v_proj", 8}, {"o_proj", 9}, {"q_norm", 10}, {"k_norm", 11},
      {"gate", 0}, {"experts", 1}, {"shared_expert", 2}, {"shared_experts", 2}, {"shared_expert_gate", 3},
      {"gate_proj", 4}, {"up_proj", 5}, {"down_proj", 6}, {"w1", 7}, {"w2", 8}, {"w3", 9},
      {"weight", 0}, {"bias", 1}, {"e_score_correction_bias", 2},
  };
  auto it = kRanks.find(s);
  return it == kRanks.end() ? 100 : it->second;
}

struct Key {
  int rank;
  long number;
  std::string_view text;
};

std::vector<Key> keys(std::string_view name) {
  std::vector<Key> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view seg = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    bool numeric = !seg.empty() && seg.size() < 10;
    for (char c : seg) numeric = numeric && std::isdigit(static_cast<unsigned char>(c));
    out.push_back(numeric ? Key{-1, std::stol(std::string(seg)), seg} : Key{segment_rank(seg), 0, seg});
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

}  // namespace

bool module_order_less(std::string_view a, std::string_view b) {
  auto ka = keys(a), kb = keys(b);
  for (size_t i = 0; i < ka.size() && i < kb.size(); ++i) {
    if (ka[i].rank != kb[i].rank) return ka[i].rank < kb[i].rank;
    if (ka[i].number != kb[i].number) return ka[i].number < kb[i].number;
    if (ka[i].text != kb[i].text) return ka[i].text < kb[i].text;
  }
  return ka.size() < kb.size();
}

}  // namespace moeforge
