#include "formats/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "core/error.hpp"

namespace moeforge {
namespace {

using nlohmann::json;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

[[noreturn]] void fail(const std::string& label, const std::string& tensor, const std::string& what) {
  throw FormatError(where(label, tensor) + what);
}

// nlohmann keeps the last of duplicate keys silently; the parse callback sees every key first.
// Finds a top-level key given twice (JSON parsers keep the last one silently). A SAX pass that
// builds nothing: nlohmann's callback parser re-scans the parent object at every nested object's
// end, which made headers of tens of thousands of tensors quadratic.
struct DuplicateKeyFinder : nlohmann::json_sax<json> {
  int depth = 0;
  std::unordered_set<std::string> seen;
  std::string duplicate;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1 && !seen.insert(k).second && duplicate.empty()) duplicate = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override { throw e; }
};

json parse_header_json(std::string_view text, const std::string& label) {
  json header;
  DuplicateKeyFinder finder;
  try {
    header = json::parse(text.begin(), text.end());
    json::sax_parse(text.begin(), text.end(), &finder);
  } catch (const json::exception& e) {
    fail(label, "", std::string("header is not valid JSON (") + e.what() +
                        "); hint: the file is corrupt or not a safetensors file");
  }
  if (!finder.duplicate.empty()) fail(label, finder.duplicate, "name appears more than once in the header");
  if (!header.is_object()) fail(label, "", "header JSON must be an object, found " + std::string(header.type_name()));
  return header;
}

uint64_t as_offset(const json& v, const std::string& label, const std::string& name, const char* what) {
  if (!v.is_number_unsigned()) fail(label, name, std::string(what) + " must be a non-negative integer, found " + v.dump());
  return v.get<uint64_t>();
}

TensorInfo parse_entry(const std::string& name, const json& e, const std::string& label) {
  if (!e.is_object()) fail(label, name, "entry must be an object, found " + e.dump());
  if (!e.contains("dtype") || !e["dtype"].is_string()) fail(label, name, "missing or non-string \"dtype\"");
  if (!e.contains("shape") || !e["shape"].is_array()) fail(label, name, "missing or non-array \"shape\"");
  if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
    fail(label, name, "\"data_offsets\" must be an array of two integers");
  TensorInfo t;
  t.name = name;
  auto dt = find_dtype(e["dtype"].get<std::string>());
  if (!dt) fail(label, name, "unknown dtype \"" + e["dtype"].get<std::string>() + "\"; known: BOOL U8 I8 U16 I16 U32 I32 U64 I64 F16 BF16 F32 F64 F8_E4M3 F8_E5M2");
  t.dtype = *dt;
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : e["shape"]) {
    uint64_t dim = as_offset(d, label, name, "every shape dimension");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
    t.shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
    numel *= dim;
  }
  t.begin = as_offset(e["data_offsets"][0], label, name, "data_offsets[0]");
  t.end = as_offset(e["data_offsets"][1], label, name, "data_offsets[1]");
  if (t.end < t.begin)
    fail(label, name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] end before they begin");
  size_t es = dtype_size(t.dtype);
  if (overflow || numel > std::numeric_limits<uint64_t>::max() / es)
    fail(label, name, "shape " + shape_string(t.shape) + " overflows");
  if (numel * es != t.end - t.begin)
    fail(label, name, "shape " + shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) + " needs " +
                          std::to_string(numel * es) + " bytes, data_offsets span " + std::to_string(t.end - t.begin));
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& m, const std::string& label) {
  if (!m.is_object()) fail(label, "__metadata__", "must be an object of strings, found " + std::string(m.type_name()));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) fail(label, "__metadata__", "value of \"" + k + "\" must be a string, found " + v.dump());
    out[k] = v.get<std::string>();
  }
  return out;
}

// Tensors must tile [0, data_len) exactly, in offset order.
void check_tiling(std::vector<TensorInfo>& tensors, uint64_t data_len, const std::string& label) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  std::string previous = "start of the data area";
  for (const auto& t : tensors) {
    if (t.begin > cursor)
      fail(label, t.name, "gap: data starts at " + std::to_string(t.begin) + " but " + previous + " ends at " + std::to_string(cursor));
    if (t.begin < cursor)
      fail(label, t.name, "overlap: data starts at " + std::to_string(t.begin) + " inside " + previous + " (ends at " + std::to_string(cursor) + ")");
    cursor = t.end;
    previous = "tensor '" + t.name + "'";
  }
  if (cursor != data_len) {
    std::string tail = tensors.empty() ? std::string("no tensors") : "the last tensor ends at " + std::to_string(cursor);
    fail(label, tensors.empty() ? "" : tensors.back().name,
         "data area is " + std::to_string(data_len) + " bytes but " + tail +
             (cursor > data_len ? " (offsets past end of file; hint: the file is truncated)" : " (trailing bytes)"));
  }
}

}  // namespace

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, const std::string& label) {
  if (file.size() < 8)
    fail(label, "", "file is " + std::to_string(file.size()) + " bytes, shorter than the 8-byte header length; hint: truncated or not safetensors");
  SafetensorsHeader h;
  h.header_len = read_u64_le(file.data());
  if (h.header_len > kMaxHeaderBytes)
    fail(label, "", "header length " + std::to_string(h.header_len) + " exceeds the " + std::to_string(kMaxHeaderBytes) + "-byte limit; hint: not a safetensors file");
  if (h.header_len > file.size() - 8)
    fail(label, "", "header length " + std::to_string(h.header_len) + " runs past the end of the file (" + std::to_string(file.size()) + " bytes); hint: truncated");
  h.data_start = 8 + h.header_len;
  std::string_view text(reinterpret_cast<const char*>(file.data() + 8), h.header_len);
  if (text.empty() || text.front() != '{') fail(label, "", "header does not start with '{'; hint: not a safetensors file");
  json header = parse_header_json(text, label);
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") h.metadata = parse_metadata(entry, label);
    else h.tensors.push_back(parse_entry(name, entry, label));
  }
  check_tiling(h.tensors, file.size() - h.data_start, label);
  return h;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : map_(path) {
  header_ = parse_safetensors(map_.bytes(), map_.path());
  for (auto& t : header_.tensors) t.file = this;
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& t) const {
  return map_.bytes().subspan(header_.data_start + t.begin, t.nbytes());
}

}  // namespace moeforge
