#include "recipes/mergekit_yaml.hpp"

#include "core/error.hpp"

namespace moeforge {

RecipeStep translate_mergekit_yaml(const Recipe& r) {
  if (!r.body["merge_method"].is_string())
    throw UsageError(r.file.string() + ": merge_method: expected a method name, found " + r.body["merge_method"].dump());
  return {"merge", {{"config", std::filesystem::absolute(r.file).lexically_normal().string()}}, "(mergekit-yaml config)"};
}

}  // namespace moeforge
