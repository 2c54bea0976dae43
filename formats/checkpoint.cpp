#include "formats/checkpoint.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/strings.hpp"
#include "formats/gguf.hpp"

namespace moeforge {
namespace fs = std::filesystem;

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";

// Files next to the weights that a derived checkpoint keeps unchanged.
constexpr const char* kSideFiles[] = {
    "tokenizer.json",         "tokenizer_config.json", "tokenizer.model",   "special_tokens_map.json",
    "added_tokens.json",      "vocab.json",            "merges.txt",        "generation_config.json",
    "chat_template.jinja",    "chat_template.json",    "preprocessor_config.json",
};

}  // namespace

std::string read_text_file(const fs::path& path) { return read_regular_file(path); }

nlohmann::json read_json_file(const fs::path& path) {
  std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

Checkpoint::Checkpoint(const fs::path& path) : path_(path) {
  std::error_code ec;
  if (!fs::exists(path_, ec)) throw IoError(path_.string() + ": no such file or directory");
  if (fs::is_regular_file(path_)) {
    if (looks_like_gguf(path_))
      throw UnsupportedError(path_.string() + ": is a GGUF file; this command reads Hugging Face safetensors checkpoints "
                             "(hint: `moeforge inspect` shows a GGUF's contents)");
    add_shard(path_);
    fs::path cfg = path_.parent_path() / "config.json";
    // A lone file only borrows its folder's config when it is that folder's model.safetensors.
    if (path_.filename() == "model.safetensors" && fs::exists(cfg)) config_ = read_json_file(cfg);
  } else if (fs::is_directory(path_)) {
    if (fs::exists(path_ / kIndexName)) {
      open_index(path_ / kIndexName);
    } else if (fs::exists(path_ / "model.safetensors")) {
      add_shard(path_ / "model.safetensors");
    } else {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(path_))
        if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
      std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        return natural_less(a.filename().string(), b.filename().string());
      });
      if (files.empty()) {
        bool has_bin = fs::exists(path_ / "pytorch_model.bin") || fs::exists(path_ / "pytorch_model.bin.index.json");
        throw FormatError(path_.string() + ": no .safetensors files" +
                          (has_bin ? std::string(" (found PyTorch .bin weights; hint: convert them to safetensors first)")
                                   : std::string(" (hint: point at a Hugging Face model directory or a .safetensors file)")));
      }
      layout_ = files.size() == 1 ? Layout::kSingleFile : Layout::kUnindexedShards;
      for (const auto& f : files) add_shard(f);
    }
    if (fs::exists(path_ / "config.json")) config_ = read_json_file(path_ / "config.json");
    find_side_files();
  } else {
    throw IoError(path_.string() + ": neither a regular file nor a directory");
  }
  expose_fused_experts();
  for (const auto& [name, info] : by_name_) ordered_.push_back(info);
  std::sort(ordered_.begin(), ordered_.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return natural_less(a->name, b->name); });
}

Checkpoint::Checkpoint(const fs::path& label, nlohmann::json config, std::vector<TensorInfo> tensors)
    : path_(label), config_(std::move(config)), planned_(std::move(tensors)) {
  for (const auto& t : planned_) by_name_.emplace(t.name, &t);
  expose_fused_experts();
  for (const auto& [name, info] : by_name_) ordered_.push_back(info);
  std::sort(ordered_.begin(), ordered_.end(), [](const TensorInfo* a, const TensorInfo* b) { return natural_less(a->name, b->name); });
}

void Checkpoint::expose_fused_experts() {
  std::string type = config_.is_object() && config_.contains("model_type") && config_["model_type"].is_string() ? config_["model_type"].get<std::string>() : "";
  if (!has_v5_fused_layout(type)) return;
  std::vector<const TensorInfo*> replaced;
  for (const auto& [name, t] : by_name_) {
    bool expert = name.size() > 9 && (name.ends_with(".experts.gate_up_proj") || name.ends_with(".experts.down_proj"));
    if (expert) fused_.push_back(t);
  }
  if (fused_.empty()) return;
  expert_layout_ = ExpertLayout::kFused;
  for (const auto& [name, t] : by_name_) {
    auto views = per_expert_views(*t, type, label());
    if (views.empty()) continue;
    replaced.push_back(t);
    for (auto& v : views) views_.push_back(std::move(v));
  }
  for (const TensorInfo* t : replaced) by_name_.erase(t->name);
  for (const TensorInfo& v : views_) {
    auto [it, inserted] = by_name_.emplace(v.name, &v);
    if (!inserted)
      throw FormatError(where(label(), v.name) + "stored per expert and also inside a fused tensor; hint: a checkpoint holds its experts in one layout");
  }
}

Checkpoint::Checkpoint(const fs::path& gguf, nlohmann::json config, std::vector<TensorInfo> tensors, std::shared_ptr<const void> storage)
    : Checkpoint(gguf, std::move(config), std::move(tensors)) {
  layout_ = Layout::kGguf;
  storage_ = std::move(storage);
}

void Checkpoint::add_shard(const fs::path& file) {
  shards_.push_back(std::make_unique<SafetensorsFile>(file));
  for (const auto& t : shards_.back()->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted)
      throw FormatError(where(file.string(), t.name) + "also stored in " + it->second->file->path() +
                        "; hint: a directory must not hold two copies of a tensor");
  }
}

void Checkpoint::open_index(const fs::path& index_path) {
  layout_ = Layout::kIndexedShards;
  nlohmann::json index = read_json_file(index_path);
  const std::string label = index_path.string();
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw FormatError(label + ": expected an object with a \"weight_map\" object");
  std::map<std::string, std::vector<std::string>> by_shard;  // shard file → tensor names
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) throw FormatError(where(label, name) + "weight_map value must be a file name, found " + file.dump());
    std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f == ".." || f.empty())
      throw FormatError(where(label, name) + "shard name \"" + f + "\" must be a plain file name in the same directory");
    by_shard[f].push_back(name);
  }
  for (const auto& [file, names] : by_shard) {
    fs::path shard = index_path.parent_path() / file;
    if (!fs::exists(shard))
      throw FormatError(where(label, names.front()) + "listed in shard \"" + file + "\", which does not exist (" +
                        std::to_string(names.size()) + " tensors affected)");
    add_shard(shard);
    const SafetensorsFile& sf = *shards_.back();
    std::set<std::string> in_file;
    for (const auto& t : sf.tensors()) in_file.insert(t.name);
    for (const auto& n : names)
      if (!in_file.count(n)) throw FormatError(where(label, n) + "weight_map says it is in " + file + ", but that shard does not hold it");
    std::set<std::string> listed(names.begin(), names.end());
    for (const auto& n : in_file)
      if (!listed.count(n)) throw FormatError(where(sf.path(), n) + "stored in this shard but missing from " + label + "'s weight_map");
  }
  if (shards_.empty()) throw FormatError(label + ": weight_map is empty");
}

void Checkpoint::find_side_files() {
  for (const char* name : kSideFiles)
    if (fs::is_regular_file(path_ / name)) side_files_.push_back(path_ / name);
}

std::string Checkpoint::layout_name() const {
  switch (layout_) {
    case Layout::kSingleFile: return "single file";
    case Layout::kIndexedShards: return std::to_string(shards_.size()) + " shards with index";
    case Layout::kUnindexedShards: return std::to_string(shards_.size()) + " shards without index";
    case Layout::kGguf: return "GGUF file";
  }
  return "";
}

fs::path Checkpoint::config_path() const {
  if (layout_ == Layout::kGguf) return path_.string() + " (metadata)";
  return fs::is_directory(path_) ? path_ / "config.json" : path_.parent_path() / "config.json";
}

const TensorInfo* Checkpoint::find_tensor(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::require_tensor(const std::string& name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) throw FormatError(where(label(), name) + "missing; hint: `moeforge inspect --tensors` lists what it holds");
  return *t;
}

std::span<const std::byte> Checkpoint::data(const TensorInfo& t) const {
  if (t.file == nullptr) throw NoDataYet(where(label(), t.name) + "has no data yet: a dry run plans this step from the plan of the step before");
  return t.file->data(t);
}

uint64_t Checkpoint::bytes_on_disk() const {
  std::error_code ec;
  if (layout_ == Layout::kGguf) return fs::file_size(path_, ec);
  uint64_t total = 0;
  for (const auto& s : shards_) total += s->file_size();
  return total;
}

}  // namespace moeforge
