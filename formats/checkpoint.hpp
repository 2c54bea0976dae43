// A Hugging Face checkpoint as moeforge sees it: a .safetensors file, or a directory holding one
// model.safetensors, shards listed by model.safetensors.index.json (cross-checked both ways), or
// shards without an index; plus config.json and the tokenizer/generation files to carry over.
#pragma once
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <deque>

#include "formats/expert_layout.hpp"
#include "formats/safetensors.hpp"

namespace moeforge {

enum class Layout { kSingleFile, kIndexedShards, kUnindexedShards, kGguf };

class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& path);
  // A checkpoint known only from a plan (names, dtypes, shapes, config) — a dry run's stand-in for
  // an output not written yet. Reading its data throws.
  Checkpoint(const std::filesystem::path& label, nlohmann::json config, std::vector<TensorInfo> tensors);
  // A checkpoint whose tensors are views (TensorInfo::source) into a GGUF file, under Hugging Face
  // names, with a config.json derived from its metadata. `storage` keeps the views alive.
  Checkpoint(const std::filesystem::path& gguf, nlohmann::json config, std::vector<TensorInfo> tensors,
             std::shared_ptr<const void> storage);

  const std::filesystem::path& path() const { return path_; }
  std::string label() const { return path_.string(); }
  Layout layout() const { return layout_; }
  std::string layout_name() const;

  bool has_config() const { return !config_.is_null(); }
  const nlohmann::json& config() const { return config_; }  // null when there is no config.json
  std::filesystem::path config_path() const;
  // Files a derived checkpoint should carry over (tokenizer files, generation_config.json, ...).
  const std::vector<std::filesystem::path>& side_files() const { return side_files_; }

  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // All tensors in natural name order ("layers.2" before "layers.10").
  const std::vector<const TensorInfo*>& tensors() const { return ordered_; }
  const TensorInfo* find_tensor(const std::string& name) const;
  const TensorInfo& require_tensor(const std::string& name) const;  // throws FormatError
  std::span<const std::byte> data(const TensorInfo& t) const;
  uint64_t bytes_on_disk() const;
  // kFused when the experts are stored in the transformers-v5 layout; tensors() and find_tensor()
  // then show per-expert views of the fused tensors (formats/expert_layout.hpp), which are listed here.
  ExpertLayout expert_layout() const { return expert_layout_; }
  const std::vector<const TensorInfo*>& fused_expert_tensors() const { return fused_; }

 private:
  void expose_fused_experts();
  void open_index(const std::filesystem::path& index_path);
  void add_shard(const std::filesystem::path& file);
  void find_side_files();

  std::filesystem::path path_;
  Layout layout_ = Layout::kSingleFile;
  nlohmann::json config_;
  std::vector<std::filesystem::path> side_files_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<TensorInfo> planned_;  // tensors of a planned checkpoint, or views
  std::shared_ptr<const void> storage_;  // what the views read from
  std::unordered_map<std::string, const TensorInfo*> by_name_;
  std::vector<const TensorInfo*> ordered_;
  ExpertLayout expert_layout_ = ExpertLayout::kPerExpert;
  std::deque<TensorInfo> views_;         // per-expert views of fused tensors
  std::vector<const TensorInfo*> fused_;  // the fused tensors they replace in by_name_
};

// A whole file's bytes; IoError naming the file when it cannot be opened.
std::string read_text_file(const std::filesystem::path& path);
// Reads and parses a JSON file; FormatError naming the file on bad JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace moeforge
