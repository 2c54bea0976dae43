#include "engine/stats_run.hpp"

#include <algorithm>
#include <charconv>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {

Shard parse_shard(const std::string& text) {
  Shard s;
  size_t slash = text.find('/');
  auto number = [&](size_t from, size_t to, int& out) {
    auto r = std::from_chars(text.data() + from, text.data() + to, out);
    return r.ec == std::errc() && r.ptr == text.data() + to && to > from;
  };
  if (slash == std::string::npos || !number(0, slash, s.index) || !number(slash + 1, text.size(), s.count) || s.count < 1 || s.index < 1 ||
      s.index > s.count)
    throw UsageError("--shard: expected K/N with 1 <= K <= N (e.g. 3/8), found '" + text + "'");
  return s;
}

std::string model_fingerprint(const Checkpoint& model) {
  Sha256 h;
  h.update(model.has_config() ? model.config().dump() : std::string("null"));
  for (const TensorInfo* t : model.tensors()) {
    h.update(t->name + "\n" + std::string(dtype_name(t->dtype)) + shape_string(t->shape) + "\n");
    // The first row through the tensor readers, so views into a GGUF file are sampled too.
    const int64_t rows = t->shape.size() < 2 ? 1 : t->shape[0];
    if (rows == 0 || shape_numel(t->shape) == 0) continue;
    std::vector<std::byte> row(dtype_size(t->dtype) * static_cast<size_t>(shape_numel(t->shape) / rows));
    copy_rows_raw(*t, 0, 1, row.data());
    h.update(row.data(), std::min<size_t>(row.size(), 256));
  }
  return h.hex();
}

nlohmann::json describe_run(const Checkpoint& model, const DataSet& data, Shard shard, WindowRange range, int64_t segment_tokens,
                            const nlohmann::json& options) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : data.files)
    files.push_back({{"path", f.path}, {"kind", f.kind == DataKind::kBytes ? "bytes" : "ids-or-text"},
                     {"bytes", std::filesystem::file_size(f.path)}, {"sha256", sha256_file(f.path)}});
  nlohmann::json dataset = {{"files", files}, {"windows", data.batch.windows.size()}, {"tokens", data.batch.n_tokens()},
                            {"pieces", {{{"shard", {shard.index, shard.count}}, {"windows", {range.first, range.last}}}}}};
  return {{"model_fingerprint", model_fingerprint(model)}, {"options", options}, {"segment_tokens", segment_tokens}, {"datasets", {dataset}}};
}

}  // namespace moeforge
