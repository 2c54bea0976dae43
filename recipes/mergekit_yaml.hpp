// mergekit-yaml configs (recognised by `merge_method`), run unchanged: the file becomes one
// `merge` step whose `config` is the file itself, so the merge verb reads its models, slices,
// parameters, dtype and tokenizer keys exactly as `moeforge merge OUT --config FILE` does. The
// moeforge extension keys `output:` (when --out is not given) and `seed:` (DARE/DELLA) may be added.
#pragma once
#include "recipes/recipe.hpp"

namespace moeforge {

RecipeStep translate_mergekit_yaml(const Recipe& recipe);

}  // namespace moeforge
