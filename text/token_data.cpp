#include "text/token_data.hpp"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "formats/mapped_file.hpp"

namespace moeforge {
namespace {

void cut(Batch& batch, const std::vector<int32_t>& doc, const DataOptions& o, int64_t* budget) {
  for (size_t start = 0; start < doc.size() && *budget > 0; start += static_cast<size_t>(o.seq_len)) {
    int64_t len = std::min<int64_t>({o.seq_len, static_cast<int64_t>(doc.size() - start), *budget});
    batch.add_window(doc.data() + start, len);
    *budget -= len;
  }
}

void check_id(int64_t id, const DataOptions& o, const std::string& where_) {
  if (id < 0 || (o.vocab > 0 && id >= o.vocab))
    throw FormatError(where_ + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(o.vocab) + ")");
}

std::vector<std::vector<int32_t>> read_jsonl(const std::filesystem::path& path, const DataOptions& o) {
  std::istringstream in(read_regular_file(path));
  std::vector<std::vector<int32_t>> docs;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string at = path.string() + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(at + ": not valid JSON (" + e.what() + ")");
    }
    const nlohmann::json* ids = j.is_array() ? &j : (j.is_object() && j.contains("input_ids") ? &j["input_ids"] : nullptr);
    if (ids == nullptr || !ids->is_array())
      throw FormatError(at + ": expected {\"input_ids\": [...]} or an array of token ids (hint: text needs a tokenizer)");
    std::vector<int32_t> doc;
    for (const auto& v : *ids) {
      if (!v.is_number_integer()) throw FormatError(at + ": token ids must be integers, found " + v.dump());
      check_id(v.get<int64_t>(), o, at);
      doc.push_back(v.get<int32_t>());
    }
    docs.push_back(std::move(doc));
  }
  return docs;
}

std::vector<int32_t> read_bin(const std::filesystem::path& path, const DataOptions& o) {
  int width = o.id_width != 0 ? o.id_width : (o.vocab > 0 && o.vocab <= 65536 ? 16 : 32);
  if (width != 16 && width != 32) throw UsageError("--id-width must be 16 or 32, found " + std::to_string(width));
  MappedFile map(path);
  size_t bytes = width / 8;
  if (map.size() % bytes != 0)
    throw FormatError(path.string() + ": " + std::to_string(map.size()) + " bytes is not a whole number of uint" + std::to_string(width) + " ids");
  std::vector<int32_t> ids(map.size() / bytes);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t v = 0;
    std::memcpy(&v, map.bytes().data() + i * bytes, bytes);
    check_id(v, o, path.string() + ": id " + std::to_string(i));
    ids[i] = static_cast<int32_t>(v);
  }
  return ids;
}

}  // namespace

DataFile load_data(const std::filesystem::path& path, DataKind kind, const DataOptions& o) {
  if (o.seq_len < 1) throw UsageError("--seq-len must be at least 1");
  require_regular_file(path);
  DataFile f;
  f.path = path.string();
  f.kind = kind;
  int64_t budget = o.max_tokens > 0 ? o.max_tokens : INT64_MAX;
  if (kind == DataKind::kBytes) {
    if (o.vocab > 0 && o.vocab < 256) throw UsageError(path.string() + ": --bytes needs a vocabulary of at least 256 tokens, the model has " + std::to_string(o.vocab));
    MappedFile map(path);
    std::vector<int32_t> ids(map.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<uint8_t>(map.bytes()[i]);
    cut(f.batch, ids, o, &budget);
    f.token_bytes.assign(f.batch.tokens.size(), 1);
  } else if (path.extension() == ".jsonl" || path.extension() == ".json") {
    for (const auto& doc : read_jsonl(path, o)) cut(f.batch, doc, o, &budget);
  } else if (path.extension() == ".bin") {
    cut(f.batch, read_bin(path, o), o, &budget);
  } else {
    throw UsageError(path.string() + ": unknown data format (token ids come as .jsonl or .bin; use --bytes for byte-level models)");
  }
  if (f.batch.windows.empty() && !o.allow_empty) throw FormatError(path.string() + ": no tokens");
  return f;
}

DataSet combine(std::vector<DataFile> files) {
  DataSet s;
  for (size_t i = 0; i < files.size(); ++i)
    for (const auto& w : files[i].batch.windows) {
      s.batch.add_window(files[i].batch.tokens.data() + w.offset, w.length);
      s.file_of_window.push_back(i);
    }
  s.files = std::move(files);
  return s;
}

}  // namespace moeforge
