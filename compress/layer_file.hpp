// Entries of the {"layer": ...} JSON files users give (--protect, --keep-list, --drop-list,
// --groups-file): each key names an MoE layer and each listed value an expert, both checked
// against the model; errors are UsageErrors naming the file.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "model/model_config.hpp"

namespace moeforge {

[[noreturn]] void layer_file_error(const std::filesystem::path& file, const std::string& what);
int layer_of_key(const std::filesystem::path& file, const std::string& key, const ModelConfig& m);
int expert_of_value(const std::filesystem::path& file, const std::string& key, const nlohmann::json& value, const ModelConfig& m);

}  // namespace moeforge
