#include "formats/gguf_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/log.hpp"
#include "core/output_safety.hpp"
#include "core/parallel.hpp"
#include "core/strings.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr uint64_t kAlignment = 32;
constexpr size_t kMaxNameBytes = 63;  // GGML_MAX_NAME − 1
constexpr const char* kValueTypes[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32", "FLOAT32",
                                       "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};

uint64_t padded(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

uint32_t value_type_id(const std::string& name) {
  for (uint32_t i = 0; i < 13; ++i)
    if (name == kValueTypes[i]) return i;
  throw Error(ExitCode::kInternal, "GGUF value type \"" + name + "\" is unknown");
}

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s_.append(b, sizeof(T));
  }
  void put_string(const std::string& v) {
    put<uint64_t>(v.size());
    s_ += v;
  }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

void put_scalar(Bytes& b, uint32_t type, const ojson& v, const std::string& key) {
  switch (type) {
    case 0: b.put<uint8_t>(v.get<uint8_t>()); return;
    case 1: b.put<int8_t>(v.get<int8_t>()); return;
    case 2: b.put<uint16_t>(v.get<uint16_t>()); return;
    case 3: b.put<int16_t>(v.get<int16_t>()); return;
    case 4: b.put<uint32_t>(v.get<uint32_t>()); return;
    case 5: b.put<int32_t>(v.get<int32_t>()); return;
    case 6: b.put<float>(v.get<float>()); return;
    case 7: b.put<uint8_t>(v.get<bool>() ? 1 : 0); return;
    case 8: b.put_string(v.get<std::string>()); return;
    case 10: b.put<uint64_t>(v.get<uint64_t>()); return;
    case 11: b.put<int64_t>(v.get<int64_t>()); return;
    case 12: b.put<double>(v.get<double>()); return;
    default: throw Error(ExitCode::kInternal, "GGUF key " + key + ": nested arrays cannot be written");
  }
}

void put_entry(Bytes& b, const std::string& key, const ojson& e) {
  b.put_string(key);
  uint32_t type = value_type_id(e.at("type").get<std::string>());
  b.put<int32_t>(static_cast<int32_t>(type));
  if (type != 9) return put_scalar(b, type, e.at("value"), key);
  uint32_t elem = value_type_id(e.at("elem_type").get<std::string>());
  b.put<int32_t>(static_cast<int32_t>(elem));
  b.put<uint64_t>(e.at("value").size());
  for (const auto& v : e.at("value")) put_scalar(b, elem, v, key);
}

std::string build_header(const GgufPlan& plan, const GgufMetadata& metadata, size_t first, size_t count, std::vector<uint64_t>* relative) {
  Bytes b;
  b.put<uint32_t>(0x46554747u);  // "GGUF"
  b.put<uint32_t>(3);
  b.put<uint64_t>(count);
  b.put<uint64_t>(metadata.size());
  for (const auto& [key, e] : metadata.items()) put_entry(b, key, e);
  uint64_t offset = 0;
  for (size_t i = first; i < first + count; ++i) {
    const auto& t = plan.tensors[i];
    b.put_string(t.name);
    b.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) b.put<int64_t>(static_cast<int64_t>(d));
    b.put<int32_t>(static_cast<int32_t>(t.type));
    b.put<uint64_t>(offset);
    relative->push_back(offset);
    offset += padded(t.nbytes());
  }
  b.str().resize(padded(b.str().size()), '\0');
  return std::move(b.str());
}

void check_plan(const GgufPlan& plan) {
  if (plan.tensors.empty()) throw Error(ExitCode::kInternal, "the GGUF plan has no tensors");
  std::set<std::string> names;
  for (const auto& t : plan.tensors) {
    if (!names.insert(t.name).second) throw Error(ExitCode::kInternal, "the GGUF plan writes '" + t.name + "' twice");
    if (t.name.size() > kMaxNameBytes) throw Error(ExitCode::kInternal, "GGUF tensor name '" + t.name + "' is longer than 63 bytes");
    if (t.ne.empty() || t.ne.size() > 4) throw Error(ExitCode::kInternal, "GGUF tensor '" + t.name + "' needs 1 to 4 dimensions");
    if (t.ne[0] % ggml_type_info(t.type).block != 0)
      throw Error(ExitCode::kInternal, "GGUF tensor '" + t.name + "': " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                                           ggml_type_name(t.type) + " block");
    if (!t.produce) throw Error(ExitCode::kInternal, "GGUF tensor '" + t.name + "' has no producer");
  }
}

struct Job {
  size_t shard, tensor;
  int64_t r0, r1;
  uint64_t offset;
};

std::vector<Job> make_jobs(const GgufPlan& plan, const std::vector<GgufShard>& shards, uint64_t chunk_bytes) {
  std::vector<Job> jobs;
  for (size_t s = 0; s < shards.size(); ++s)
    for (size_t k = 0; k < shards[s].count; ++k) {
      size_t i = shards[s].first + k;
      const auto& t = plan.tensors[i];
      int64_t rows = t.rows(), align = std::max<int64_t>(1, t.row_align);
      int64_t step = static_cast<int64_t>(chunk_bytes / std::max<uint64_t>({1, t.row_bytes(), t.work_row_bytes}));
      step = std::max(align, step / align * align);
      for (int64_t r = 0; r < rows; r += step)
        jobs.push_back({s, i, r, std::min(rows, r + step), shards[s].offsets[k] + static_cast<uint64_t>(r) * t.row_bytes()});
    }
  return jobs;
}

std::string summary(const ojson& e) {
  if (e["type"] != "ARRAY") return e["value"].dump(-1, ' ', false, ojson::error_handler_t::replace);
  return "[" + std::to_string(e["value"].size()) + " × " + e["elem_type"].get<std::string>() + "]";
}

}  // namespace

int64_t GgufTensorPlan::rows() const {
  int64_t r = 1;
  for (size_t d = 1; d < ne.size(); ++d) r *= static_cast<int64_t>(ne[d]);
  return r;
}
uint64_t GgufTensorPlan::row_bytes() const { return ggml_row_bytes(type, ne.at(0)); }
uint64_t GgufTensorPlan::nbytes() const { return row_bytes() * static_cast<uint64_t>(rows()); }

ojson gguf_value(const std::string& type, ojson value) { return {{"type", type}, {"value", std::move(value)}}; }
ojson gguf_array(const std::string& elem_type, ojson values) {
  return {{"type", "ARRAY"}, {"elem_type", elem_type}, {"value", std::move(values)}};
}

fs::path gguf_split_path(const fs::path& out, size_t index, size_t count) {
  std::string base = out.string();
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".gguf") == 0) base.resize(base.size() - 5);
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "-%05zu-of-%05zu.gguf", index + 1, count);
  return base + suffix;
}

std::vector<GgufShard> layout_gguf(const GgufPlan& plan, const fs::path& out, std::optional<uint64_t> max_shard_size) {
  check_plan(plan);
  std::vector<std::pair<size_t, size_t>> groups;  // first, count
  uint64_t current = 0;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    uint64_t b = plan.tensors[i].nbytes();
    if (groups.empty() || (max_shard_size && current > 0 && current + b > *max_shard_size)) {
      groups.push_back({i, 0});
      current = 0;
    }
    ++groups.back().second;
    current += b;
  }
  if (groups.size() > 65535) throw UsageError("--max-shard-size: " + std::to_string(groups.size()) + " GGUF splits exceed llama.cpp's 65535");
  std::vector<GgufShard> shards;
  for (size_t g = 0; g < groups.size(); ++g) {
    GgufShard s;
    s.path = groups.size() == 1 ? out : gguf_split_path(out, g, groups.size());
    s.first = groups[g].first;
    s.count = groups[g].second;
    GgufMetadata meta = g == 0 ? plan.metadata : GgufMetadata::object();
    if (groups.size() > 1) {
      meta["split.no"] = gguf_value("UINT16", g);
      meta["split.count"] = gguf_value("UINT16", groups.size());
      meta["split.tensors.count"] = gguf_value("INT32", plan.tensors.size());
    }
    std::vector<uint64_t> relative;
    s.header = build_header(plan, meta, s.first, s.count, &relative);
    for (uint64_t r : relative) s.offsets.push_back(s.header.size() + r);
    s.file_size = s.header.size();
    for (size_t i = s.first; i < s.first + s.count; ++i) s.file_size += padded(plan.tensors[i].nbytes());
    shards.push_back(std::move(s));
  }
  return shards;
}

nlohmann::json describe_gguf_plan(const GgufPlan& plan, const fs::path& out, std::optional<uint64_t> max_shard_size, int threads,
                                  uint64_t chunk_bytes) {
  auto shards = layout_gguf(plan, out, max_shard_size);
  nlohmann::json tensors = nlohmann::json::array(), files = nlohmann::json::array(), meta = nlohmann::json::object();
  uint64_t total = 0, output = 0, largest = 0;
  for (const auto& s : shards) {
    files.push_back({{"file", s.path.filename().string()}, {"bytes", s.file_size}, {"tensors", s.count}});
    output += s.file_size;
    for (size_t i = s.first; i < s.first + s.count; ++i) {
      const auto& t = plan.tensors[i];
      tensors.push_back({{"name", t.name}, {"dtype", ggml_type_name(t.type)}, {"shape", t.ne}, {"bytes", t.nbytes()},
                         {"source", t.source}, {"shard", s.path.filename().string()}});
      total += t.nbytes();
      uint64_t per_row = std::max(t.row_bytes(), t.work_row_bytes);
      uint64_t chunk = std::max<uint64_t>(chunk_bytes, static_cast<uint64_t>(std::max<int64_t>(1, t.row_align)) * per_row);
      largest = std::max(largest, std::min(static_cast<uint64_t>(t.rows()) * per_row, chunk));
    }
  }
  for (const auto& [key, e] : plan.metadata.items()) meta[key] = summary(e);
  return {{"format", "gguf"},     {"metadata", meta},   {"tensors", tensors},      {"shards", files},
          {"tensor_bytes", total}, {"output_bytes", output},
          // Each worker holds one output chunk and its float32 source rows.
          {"peak_buffer_bytes_estimate", static_cast<uint64_t>(threads) * largest * 3},
          {"side_files", nlohmann::json::array()}, {"notes", plan.notes}};
}

WriteReport write_gguf(const GgufPlan& plan, const fs::path& out, std::optional<uint64_t> max_shard_size, const WriteOptions& options) {
  auto start = std::chrono::steady_clock::now();
  auto shards = layout_gguf(plan, out, max_shard_size);
  OutputPaths paths{plan.inputs, {}, {}};
  for (const auto& s : shards) paths.files.push_back(s.path);
  for (const auto& [path, text] : plan.extra_files) paths.files.push_back(path);
  check_outputs(paths, options.force);

  OutputTransaction tx(options.force);
  for (const auto& [path, text] : plan.extra_files) tx.write(path, text);
  std::vector<int> fds;
  for (const auto& s : shards) {
    int fd = tx.create(s.path);
    int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(s.file_size));
    if (rc == ENOSPC) throw IoError(s.path.string() + kPartialSuffix + ": no space left for " + format_bytes(s.file_size));
    if (rc != 0 && ::ftruncate(fd, static_cast<off_t>(s.file_size)) != 0)
      throw IoError(s.path.string() + kPartialSuffix + ": cannot size the file: " + std::strerror(errno));
    write_all(fd, s.header.data(), s.header.size(), 0, s.path.string());
    fds.push_back(fd);
  }
  auto jobs = make_jobs(plan, shards, options.chunk_bytes);
  int threads = resolve_threads(options.threads);
  std::vector<std::vector<std::byte>> buffers(static_cast<size_t>(threads));
  uint64_t total = 0;
  for (const auto& t : plan.tensors) total += t.nbytes();
  Progress progress("writing", total);
  parallel_for(jobs.size(), threads, [&](size_t j, int worker) {
    const Job& job = jobs[j];
    const auto& t = plan.tensors[job.tensor];
    size_t bytes = static_cast<size_t>(job.r1 - job.r0) * t.row_bytes();
    auto& buf = buffers[static_cast<size_t>(worker)];
    if (buf.size() < bytes) buf.resize(bytes);
    try {
      t.produce(job.r0, job.r1, buf.data());
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ExitCode::kInternal, "producing GGUF tensor '" + t.name + "': " + e.what());
    }
    write_all(fds[job.shard], buf.data(), bytes, job.offset, shards[job.shard].path.string());
    progress.add(bytes);
  });
  buffers.clear();
  tx.commit();
  WriteReport report;
  report.tensor_bytes = total;
  for (const auto& s : shards) report.files.push_back(s.path.filename().string());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace moeforge
