#include "compress/layer_file.hpp"

#include "core/error.hpp"

namespace moeforge {

void layer_file_error(const std::filesystem::path& file, const std::string& what) { throw UsageError(file.string() + ": " + what); }

int layer_of_key(const std::filesystem::path& file, const std::string& key, const ModelConfig& m) {
  int layer = -1;
  try {
    size_t used = 0;
    layer = std::stoi(key, &used);
    if (used != key.size()) layer = -1;
  } catch (const std::exception&) {
  }
  if (layer < 0 || layer >= m.n_layers) layer_file_error(file, "layer \"" + key + "\" does not exist (the model has " + std::to_string(m.n_layers) + " layers)");
  if (!m.is_moe_layer(layer)) layer_file_error(file, "layer " + key + " is a dense layer");
  return layer;
}

int expert_of_value(const std::filesystem::path& file, const std::string& key, const nlohmann::json& value, const ModelConfig& m) {
  if (!value.is_number_integer() || value.get<int>() < 0 || value.get<int>() >= m.n_experts)
    layer_file_error(file, "layer " + key + ": expert " + value.dump() + " does not exist (experts 0.." + std::to_string(m.n_experts - 1) + ")");
  return value.get<int>();
}

}  // namespace moeforge
