#include "core/version.hpp"
#include "formats/sharded_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/output_safety.hpp"
#include "core/log.hpp"
#include "core/parallel.hpp"
#include "core/strings.hpp"
#include "formats/module_order.hpp"
#include "formats/safetensors_writer.hpp"

namespace moeforge {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";

std::string shard_name(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

std::map<std::string, std::string> header_metadata(const Plan& plan) {
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"producer", std::string("moeforge ") + kVersion}};
  if (!plan.provenance.empty()) meta["moeforge"] = plan.provenance.dump();
  return meta;
}

void check_plan(const Plan& plan) {
  if (plan.tensors.empty()) throw Error(ExitCode::kInternal, "the plan has no tensors to write");
  std::set<std::string> names;
  for (const auto& t : plan.tensors) {
    if (!names.insert(t.name).second) throw Error(ExitCode::kInternal, "the plan writes tensor '" + t.name + "' twice");
    if (!t.produce) throw Error(ExitCode::kInternal, "tensor '" + t.name + "' has no producer");
    for (int64_t d : t.shape)
      if (d < 0) throw Error(ExitCode::kInternal, "tensor '" + t.name + "' has a negative dimension");
  }
}

void check_free_space(const fs::path& out, uint64_t needed) {
  uint64_t available = free_bytes_at(out);
  if (needed > available)
    throw IoError(out.string() + ": output needs " + format_bytes(needed) + " but only " + format_bytes(available) +
                  " are free; hint: free space or write elsewhere");
}

// One unit of parallel work: rows [r0, r1) of one tensor, written at a file offset.
struct Job {
  size_t shard;
  size_t tensor;
  int64_t r0, r1;
  uint64_t offset;
};

std::vector<Job> make_jobs(const Plan& plan, const std::vector<ShardLayout>& shards, uint64_t chunk_bytes) {
  std::vector<Job> jobs;
  for (size_t s = 0; s < shards.size(); ++s)
    for (size_t k = 0; k < shards[s].tensors.size(); ++k) {
      const OutputTensor& t = plan.tensors[shards[s].tensors[k]];
      int64_t rows = t.rows();
      if (t.nbytes() == 0) continue;
      int64_t step = t.whole ? rows : std::max<int64_t>(1, static_cast<int64_t>(chunk_bytes / std::max<uint64_t>(t.row_bytes(), 1)));
      for (int64_t r = 0; r < rows; r += step) {
        int64_t r1 = std::min(rows, r + step);
        jobs.push_back({s, shards[s].tensors[k], r, r1, shards[s].offsets[k] + static_cast<uint64_t>(r) * t.row_bytes()});
      }
    }
  return jobs;
}

}  // namespace

std::vector<ShardLayout> layout_shards(const Plan& plan, uint64_t max_shard_size) {
  std::vector<size_t> order(plan.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return module_order_less(plan.tensors[a].name, plan.tensors[b].name); });
  std::vector<std::vector<size_t>> groups;
  uint64_t current = 0;
  for (size_t i : order) {
    uint64_t b = plan.tensors[i].nbytes();
    if (groups.empty() || (current > 0 && current + b > max_shard_size)) {
      groups.emplace_back();
      current = 0;
    }
    groups.back().push_back(i);
    current += b;
  }
  auto metadata = header_metadata(plan);
  std::vector<ShardLayout> shards;
  for (size_t g = 0; g < groups.size(); ++g) {
    ShardLayout s;
    s.file_name = shard_name(g, groups.size());
    std::vector<HeaderEntry> entries;
    std::map<std::string, size_t> index_of;
    for (size_t idx : groups[g]) {
      const auto& t = plan.tensors[idx];
      entries.push_back({t.name, t.dtype, t.shape, t.nbytes()});
      index_of[t.name] = idx;
    }
    std::vector<uint64_t> relative;
    s.header = build_safetensors_header(entries, metadata, &relative);
    for (const auto& e : entries) s.tensors.push_back(index_of[e.name]);
    uint64_t data_start = 8 + s.header.size();
    for (uint64_t r : relative) s.offsets.push_back(data_start + r);
    s.file_size = data_start;
    for (size_t idx : s.tensors) s.file_size += plan.tensors[idx].nbytes();
    shards.push_back(std::move(s));
  }
  return shards;
}

json describe_plan(const Plan& plan, const WriteOptions& options) {
  check_plan(plan);
  auto shards = layout_shards(plan, options.max_shard_size);
  std::vector<std::string> shard_of(plan.tensors.size());
  json shard_list = json::array();
  uint64_t file_bytes = 0;
  for (const auto& s : shards) {
    for (size_t idx : s.tensors) shard_of[idx] = s.file_name;
    shard_list.push_back({{"file", s.file_name}, {"bytes", s.file_size}, {"tensors", s.tensors.size()}});
    file_bytes += s.file_size;
  }
  json tensors = json::array();
  uint64_t largest_chunk = 0;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const auto& t = plan.tensors[i];
    tensors.push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"bytes", t.nbytes()},
                       {"source", t.source}, {"shard", shard_of[i]}});
    largest_chunk = std::max(largest_chunk, t.whole ? t.nbytes() : std::min(t.nbytes(), std::max(options.chunk_bytes, t.row_bytes())));
  }
  int threads = resolve_threads(options.threads);
  return {{"config", plan.config},
          {"tensors", tensors},
          {"shards", shard_list},
          {"tensor_bytes", plan.total_bytes()},
          {"output_bytes", file_bytes},
          // Each worker holds one output chunk and at most one float32 copy of it.
          {"peak_buffer_bytes_estimate", static_cast<uint64_t>(threads) * largest_chunk * 3},
          {"side_files", [&] {
             json a = json::array();
             for (const auto& f : plan.side_files) a.push_back(f.filename().string());
             return a;
           }()},
          {"notes", plan.notes}};
}

WriteReport write_checkpoint(const Plan& plan, const fs::path& out, const WriteOptions& options) {
  auto start = std::chrono::steady_clock::now();
  check_plan(plan);
  OutputPaths paths{plan.inputs, {out}, {}};
  for (const auto& [path, text] : plan.extra_files) paths.files.push_back(path);
  check_outputs(paths, options.force);
  auto shards = layout_shards(plan, options.max_shard_size);
  uint64_t file_bytes = 0;
  for (const auto& s : shards) file_bytes += s.file_size;
  check_free_space(out, file_bytes);

  // Every file this output will hold: moeforge.json lists them, so a later --force knows what it may remove.
  std::vector<std::string> files;
  for (const auto& f : plan.side_files) files.push_back(f.filename().string());
  for (const auto& [name, text] : plan.text_files) files.push_back(name);
  if (!plan.config.is_null()) files.push_back("config.json");
  for (const auto& s : shards) files.push_back(s.file_name);
  if (shards.size() > 1) files.push_back(kIndexName);

  OutputTransaction tx(options.force);
  OutputDirectory dir(out, options.force, tx, std::set<std::string>(files.begin(), files.end()));
  // Renames happen in creation order: small files, the marker, the weights, the index last.
  for (const auto& f : plan.side_files) tx.write(out / f.filename(), read_regular_file(f));
  for (const auto& [name, text] : plan.text_files) tx.write(out / name, text);
  if (!plan.config.is_null()) tx.write(out / "config.json", plan.config.dump(2) + "\n");
  json marker = plan.provenance.is_object() ? plan.provenance : json::object();
  marker["files"] = files;
  tx.write(out / kMarkerName, marker.dump(2) + "\n");
  for (const auto& [path, text] : plan.extra_files) tx.write(path, text);

  std::vector<int> fds;
  for (const auto& s : shards) {
    fs::path p = out / s.file_name;
    int fd = tx.create(p);
    int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(s.file_size));
    if (rc == ENOSPC) throw IoError(p.string() + kPartialSuffix + ": no space left for " + format_bytes(s.file_size));
    if (rc != 0 && ::ftruncate(fd, static_cast<off_t>(s.file_size)) != 0)
      throw IoError(p.string() + kPartialSuffix + ": cannot size file: " + std::strerror(errno));
    uint64_t len = s.header.size();
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(len >> (8 * i));
    write_all(fd, prefix, 8, 0, p.string());
    write_all(fd, s.header.data(), s.header.size(), 8, p.string());
    fds.push_back(fd);
  }

  auto jobs = make_jobs(plan, shards, options.chunk_bytes);
  int threads = resolve_threads(options.threads);
  std::vector<std::vector<std::byte>> buffers(static_cast<size_t>(threads));
  Progress progress("writing", plan.total_bytes());
  parallel_for(jobs.size(), threads, [&](size_t j, int worker) {
    const Job& job = jobs[j];
    const OutputTensor& t = plan.tensors[job.tensor];
    size_t bytes = static_cast<size_t>(job.r1 - job.r0) * t.row_bytes();
    auto& buf = buffers[static_cast<size_t>(worker)];
    if (buf.size() < bytes) buf.resize(bytes);
    try {
      t.produce(job.r0, job.r1, buf.data());
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ExitCode::kInternal, "producing tensor '" + t.name + "': " + e.what());
    }
    write_all(fds[job.shard], buf.data(), bytes, job.offset, shards[job.shard].file_name);
    progress.add(bytes);
  });
  buffers.clear();

  WriteReport report;
  report.tensor_bytes = plan.total_bytes();
  for (const auto& s : shards) report.files.push_back(s.file_name);
  if (shards.size() > 1) {
    json weight_map = json::object();
    for (const auto& s : shards)
      for (size_t idx : s.tensors) weight_map[plan.tensors[idx].name] = s.file_name;
    json index = {{"metadata", {{"total_size", plan.total_bytes()}}}, {"weight_map", weight_map}};
    tx.write(out / kIndexName, index.dump(2) + "\n");
    report.files.push_back(kIndexName);
  }
  tx.commit();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace moeforge
