// libFuzzer target: recipe YAML (aliases, nesting, odd scalars, duplicate keys, several documents)
// must be accepted or rejected with an Error, never crash, hang or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "recipes/recipe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    moeforge::parse_recipe(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const moeforge::Error&) {
  }
  return 0;
}
