// mergekit-moe configs, run unchanged: base_model, gate_mode (hidden, hidden_last, cheap_embed,
// random, uniform_random), dtype, experts_per_token, experts[] (source_model, positive_prompts,
// negative_prompts, noise_scale, residual_scale), shared_experts, architecture. The result is
// what mergekit-moe builds: non-expert weights copied from base_model (unless the moeforge key
// `shared_weights: average` asks for the BTX mean), experts' FFNs, routers from the gate mode.
// Prompts are tokenized as mergekit does (BOS text + prompt, no other special tokens);
// `positive_token_ids` / `negative_token_ids` (lists of id lists, BOS included) may replace them.
// The config becomes one compose step; prompt token ids go to .jsonl files in `work_dir`.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "recipes/recipe.hpp"

namespace moeforge {

// Tokenizes a prompt the mergekit way with the tokenizer of `model`.
using PromptTokenizer = std::function<std::vector<int32_t>(const std::filesystem::path& model, const std::string& prompt)>;

struct MergekitTranslation {
  RecipeStep step;  // verb "compose", paths absolute
  std::vector<std::string> warnings;
};

// With write_files false only validates (the prompt file paths are computed, nothing is written).
MergekitTranslation translate_mergekit(const Recipe& recipe, const std::filesystem::path& work_dir, bool write_files,
                                       const PromptTokenizer& tokenize);

}  // namespace moeforge
