#include "cli/data_options.hpp"

#include "core/error.hpp"

namespace moeforge {

ParamTable data_params() {
  using T = ParamType;
  return with({
      {.name = "data", .type = T::kPathList, .help = "token-id files: .jsonl ({\"input_ids\": [...]} per line) or .bin (uint16/uint32)", .greedy = true},
      {.name = "bytes", .type = T::kPathList, .help = "files read as bytes, for byte-level models (token id = byte value)", .greedy = true},
  }, window_params());
}

ParamTable window_params() {
  using T = ParamType;
  return {
      {.name = "seq-len", .type = T::kInt, .default_value = "512", .help = "tokens per window; each window is an independent sequence", .min = 1.0},
      {.name = "max-tokens", .type = T::kInt, .default_value = "0", .help = "at most this many tokens per file (0 = all)", .min = 0.0},
      {.name = "id-width", .type = T::kInt, .default_value = "0", .help = "bits per id in .bin files: 16 or 32 (0 = 16 when the vocabulary fits)", .min = 0.0},
  };
}

bool has_data(const ParamValues& p) { return !p.strings("data").empty() || !p.strings("bytes").empty(); }

namespace {

DataOptions window_options(const ParamValues& p, int64_t vocab) {
  DataOptions o;
  o.seq_len = p.integer("seq-len");
  o.max_tokens = p.integer("max-tokens");
  o.id_width = static_cast<int>(p.integer("id-width"));
  o.vocab = vocab;
  return o;
}

}  // namespace

DataSet load_dataset(const ParamValues& p, int64_t vocab) {
  if (!has_data(p)) throw UsageError("no data: pass --data FILE... (token ids) or --bytes FILE... (byte-level models)");
  DataOptions o = window_options(p, vocab);
  std::vector<DataFile> files;
  for (const auto& f : p.strings("data")) files.push_back(load_data(f, DataKind::kTokenIds, o));
  for (const auto& f : p.strings("bytes")) files.push_back(load_data(f, DataKind::kBytes, o));
  return combine(std::move(files));
}

std::vector<DataFile> load_files(const ParamValues& p, const std::string& ids_key, const std::string& bytes_key, int64_t vocab,
                                 bool allow_empty) {
  auto ids = p.strings(ids_key), bytes = p.strings(bytes_key);
  if (!ids.empty() && !bytes.empty())
    throw UsageError("--" + ids_key + " and --" + bytes_key + " cannot be mixed: the order of the files matters");
  DataOptions o = window_options(p, vocab);
  o.allow_empty = allow_empty;
  std::vector<DataFile> files;
  for (const auto& f : ids) files.push_back(load_data(f, DataKind::kTokenIds, o));
  for (const auto& f : bytes) files.push_back(load_data(f, DataKind::kBytes, o));
  return files;
}

}  // namespace moeforge
