// Executes a Plan into a Hugging Face checkpoint directory.
// Layout: tensors are assigned to shards in plan order, a new shard starting when the next
// tensor would push the current one past max_shard_size (a larger tensor gets a shard of its
// own), as transformers does. One shard is model.safetensors; N shards are
// model-0000i-of-0000N.safetensors plus model.safetensors.index.json. Inside a shard tensors are
// ordered like the reference serializer (dtype descending, then name) and the header is padded
// with spaces to a multiple of 8. Every header is known before any data is produced, so chunks
// of rows are produced in parallel and pwrite()n at their offsets; memory stays at
// threads × chunk. Files are written as NAME.partial, fsynced, and renamed into place only when
// all are complete (the index, or the single model.safetensors, last).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/plan.hpp"

namespace moeforge {

struct WriteOptions {
  uint64_t max_shard_size = 5'000'000'000;
  int threads = 0;  // 0: all cores
  bool force = false;
  uint64_t chunk_bytes = 32u << 20;
};

struct ShardLayout {
  std::string file_name;
  std::vector<size_t> tensors;           // plan indices, in data order
  std::vector<uint64_t> offsets;         // absolute file offset of each, same order
  std::string header;                    // the 8-byte length is not included
  uint64_t file_size = 0;
};

std::vector<ShardLayout> layout_shards(const Plan& plan, uint64_t max_shard_size);

// The plan as JSON for --dry-run: config, every tensor (name, dtype, shape, bytes, source,
// shard), totals and the memory bound.
nlohmann::json describe_plan(const Plan& plan, const WriteOptions& options);

struct WriteReport {
  std::vector<std::string> files;
  uint64_t tensor_bytes = 0;
  double seconds = 0;
};

// Refuses to write into an input or over an existing checkpoint (unless force) before any I/O.
WriteReport write_checkpoint(const Plan& plan, const std::filesystem::path& out_dir, const WriteOptions& options);

}  // namespace moeforge
