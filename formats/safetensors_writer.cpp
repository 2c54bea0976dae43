#include "formats/safetensors_writer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/file_io.hpp"

namespace moeforge {

std::string build_safetensors_header(std::vector<HeaderEntry>& entries, const std::map<std::string, std::string>& metadata,
                                     std::vector<uint64_t>* offsets) {
  std::stable_sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.dtype != b.dtype ? a.dtype > b.dtype : a.name < b.name;
  });
  std::string h = "{\"__metadata__\":" + nlohmann::json(metadata).dump();
  uint64_t cursor = 0;
  offsets->clear();
  for (const auto& e : entries) {
    nlohmann::json shape = nlohmann::json::array();
    for (int64_t d : e.shape) shape.push_back(d);
    h += "," + nlohmann::json(e.name).dump() + ":{\"dtype\":\"" + std::string(dtype_name(e.dtype)) + "\",\"shape\":" + shape.dump() +
         ",\"data_offsets\":[" + std::to_string(cursor) + "," + std::to_string(cursor + e.nbytes) + "]}";
    offsets->push_back(cursor);
    cursor += e.nbytes;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

void write_safetensors_file(OutputTransaction& tx, const std::filesystem::path& path, const std::vector<MemoryTensor>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  std::vector<HeaderEntry> entries;
  for (const auto& t : tensors) {
    if (t.bytes.size() != static_cast<uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype))
      throw Error(ExitCode::kInternal, "tensor '" + t.name + "': byte count does not match its shape");
    entries.push_back({t.name, t.dtype, t.shape, t.bytes.size()});
  }
  std::vector<uint64_t> offsets;
  std::string header = build_safetensors_header(entries, metadata, &offsets);
  std::map<std::string, const MemoryTensor*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  int fd = tx.create(path);
  std::string label = path.string() + kPartialSuffix;
  uint64_t len = header.size();
  char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>(len >> (8 * i));
  write_all(fd, prefix, 8, 0, label);
  write_all(fd, header.data(), header.size(), 8, label);
  uint64_t offset = 8 + header.size();
  for (size_t k = 0; k < entries.size(); ++k) {
    const auto& b = by_name[entries[k].name]->bytes;
    write_all(fd, b.data(), b.size(), offset + offsets[k], label);
  }
}

}  // namespace moeforge
