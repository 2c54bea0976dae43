// GGUF writer (version 3), executing a GgufPlan the way the ShardedWriter executes a Plan.
// Byte layout (little-endian): "GGUF" · u32 version 3 · u64 tensor count · u64 key/value count ·
// key/values (u64-length string key · i32 value type · value; arrays: i32 element type · u64
// count · elements) · tensor infos (string name · u32 n_dims · n_dims × i64 ne, fastest first ·
// i32 ggml type · u64 offset from the data start) · zero padding to a multiple of 32 · tensor
// data in tensor-info order, each padded to 32 with zeros (llama.cpp requires exactly these
// consecutive offsets). Split files (PREFIX-00001-of-0000N.gguf) are complete GGUF files each;
// the first holds every key plus split.no (u16), split.count (u16), split.tensors.count (i32),
// the others only those three.
// All headers are known before any data exists, so rows are produced in parallel chunks and
// pwrite()n at their offsets (memory: threads × chunk), through one OutputTransaction: the files
// appear only when every one is complete.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/ggml_types.hpp"
#include "formats/sharded_writer.hpp"

namespace moeforge {

// Fills rows [row_begin, row_end) of the tensor, encoded in its ggml type. A row is ne[0]
// elements; rows are counted over ne[1] · ne[2] · ne[3].
using GgufProducer = std::function<void(int64_t row_begin, int64_t row_end, std::byte* out)>;

struct GgufTensorPlan {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<uint64_t> ne;  // ggml order
  GgufProducer produce;
  int64_t row_align = 1;     // every call starts and ends at a multiple of this (or the last row)
  uint64_t work_row_bytes = 0;  // memory the producer needs per row (float32 source rows ...), sizes the chunks
  std::string source;        // for --dry-run

  int64_t rows() const;
  uint64_t row_bytes() const;
  uint64_t nbytes() const;
};

// Metadata entries as the reader returns them: key → {"type": "UINT32", "value": ...}, arrays
// with "elem_type" and a list value. Written in this order.
using GgufMetadata = nlohmann::ordered_json;

struct GgufPlan {
  GgufMetadata metadata = GgufMetadata::object();
  std::vector<GgufTensorPlan> tensors;
  std::map<std::filesystem::path, std::string> extra_files;  // committed with the GGUF (--report, --plot)
  std::vector<std::filesystem::path> inputs;
  std::vector<std::string> notes;
};

// Typed metadata entries.
nlohmann::ordered_json gguf_value(const std::string& type, nlohmann::ordered_json value);
nlohmann::ordered_json gguf_array(const std::string& elem_type, nlohmann::ordered_json values);

struct GgufShard {
  std::filesystem::path path;
  size_t first = 0, count = 0;         // tensors [first, first + count)
  std::string header;                  // everything before the data, padded to the alignment
  std::vector<uint64_t> offsets;       // absolute file offset of each tensor's data
  uint64_t file_size = 0;
};

// One file, or llama.cpp split files when max_shard_size is set and the tensors exceed it.
std::vector<GgufShard> layout_gguf(const GgufPlan& plan, const std::filesystem::path& out, std::optional<uint64_t> max_shard_size);
// The plan as JSON for --dry-run, and its printer (same shape as describe_plan).
nlohmann::json describe_gguf_plan(const GgufPlan& plan, const std::filesystem::path& out, std::optional<uint64_t> max_shard_size,
                                  int threads, uint64_t chunk_bytes);
WriteReport write_gguf(const GgufPlan& plan, const std::filesystem::path& out, std::optional<uint64_t> max_shard_size,
                       const WriteOptions& options);

// "dir/model.gguf", 3 shards → "dir/model-00001-of-00003.gguf" ...
std::filesystem::path gguf_split_path(const std::filesystem::path& out, size_t index, size_t count);

}  // namespace moeforge
