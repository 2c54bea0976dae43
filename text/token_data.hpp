// Calibration and evaluation data as token windows. Inputs: .jsonl files whose lines hold
// {"input_ids": [...]} (or a bare array), raw .bin files of little-endian uint16/uint32 ids, or
// any file read as bytes for byte-level models (token id = byte value). A .jsonl line is one
// document; .bin and byte files are one stream. Documents are cut into non-overlapping windows of
// seq_len tokens (the last one may be shorter); max_tokens caps the tokens taken per file.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "text/batch.hpp"

namespace moeforge {

enum class DataKind { kTokenIds, kBytes };

struct DataOptions {
  int64_t seq_len = 512;
  int64_t max_tokens = 0;  // 0: no cap
  int id_width = 0;        // .bin ids: 16 or 32 bits; 0 picks 16 when vocab <= 65536
  int64_t vocab = 0;       // for the id checks and the automatic width
  bool allow_empty = false;  // an empty file is an empty set (e.g. "no negative prompts")
};

struct DataFile {
  std::string path;
  DataKind kind = DataKind::kTokenIds;
  Batch batch;
  // Bytes of text behind each of batch.tokens (bytes and text data; empty for token ids): the
  // denominator of bits per byte.
  std::vector<uint32_t> token_bytes;
};

DataFile load_data(const std::filesystem::path& path, DataKind kind, const DataOptions& options);

// Several files in one batch (one forward pass), remembering which windows came from which.
struct DataSet {
  std::vector<DataFile> files;
  Batch batch;                        // all windows of all files, in file order
  std::vector<size_t> file_of_window; // index into files
};
DataSet combine(std::vector<DataFile> files);

}  // namespace moeforge
