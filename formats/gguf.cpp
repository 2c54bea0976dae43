#include "formats/gguf.hpp"

#include <cstring>
#include <limits>
#include <set>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "formats/ggml_types.hpp"
#include "formats/mapped_file.hpp"

namespace moeforge {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kMaxDims = 4;
constexpr int kMaxArrayNesting = 8;

enum ValueType : uint32_t { kU8, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };
constexpr const char* kValueTypeNames[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32", "FLOAT32",
                                           "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
constexpr uint64_t kValueSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};  // minimum encoded size

class Cursor {
 public:
  Cursor(std::span<const std::byte> data, const std::string& label) : data_(data), label_(label) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(label_ + ": " + what + " (at byte " + std::to_string(pos_) + "); hint: truncated or corrupt GGUF");
  }
  void need(uint64_t n, const char* what) const {
    if (n > data_.size() - pos_)
      fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " + std::to_string(data_.size() - pos_) + " remain");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const std::byte> data_;
  const std::string& label_;
  uint64_t pos_ = 0;
};

ojson read_value(Cursor& c, uint32_t type, int depth);

ojson read_array(Cursor& c, int depth) {
  if (depth > kMaxArrayNesting) c.fail("arrays nested deeper than " + std::to_string(kMaxArrayNesting));
  uint32_t elem = c.read<uint32_t>("array element type");
  if (elem > kF64) c.fail("unknown array element type " + std::to_string(elem));
  uint64_t count = c.read<uint64_t>("array length");
  if (count > c.remaining() / kValueSizes[elem])
    c.fail("array of " + std::to_string(count) + " " + kValueTypeNames[elem] + " elements is longer than the file");
  ojson values = ojson::array();
  for (uint64_t i = 0; i < count; ++i) values.push_back(read_value(c, elem, depth + 1));
  return {{"elem_type", kValueTypeNames[elem]}, {"values", std::move(values)}};
}

ojson read_value(Cursor& c, uint32_t type, int depth) {
  switch (type) {
    case kU8: return c.read<uint8_t>("UINT8 value");
    case kI8: return c.read<int8_t>("INT8 value");
    case kU16: return c.read<uint16_t>("UINT16 value");
    case kI16: return c.read<int16_t>("INT16 value");
    case kU32: return c.read<uint32_t>("UINT32 value");
    case kI32: return c.read<int32_t>("INT32 value");
    case kF32: return c.read<float>("FLOAT32 value");
    case kBool: {
      uint8_t b = c.read<uint8_t>("BOOL value");
      if (b > 1) c.fail("BOOL value " + std::to_string(b) + " is neither 0 nor 1");
      return b == 1;
    }
    case kString: return c.read_string("string");
    case kArray: return read_array(c, depth);
    case kU64: return c.read<uint64_t>("UINT64 value");
    case kI64: return c.read<int64_t>("INT64 value");
    case kF64: return c.read<double>("FLOAT64 value");
    default: c.fail("unknown value type " + std::to_string(type));
  }
}

std::string shape_text(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "] (ggml order)";
}

GgufTensor read_tensor_info(Cursor& c, const std::string& label) {
  GgufTensor t;
  t.name = c.read_string("tensor name");
  uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
  if (n_dims > kMaxDims) throw FormatError(where(label, t.name) + "has " + std::to_string(n_dims) + " dimensions, at most 4 allowed");
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t n = c.read<uint64_t>("tensor dimension");
    if (n != 0 && numel > std::numeric_limits<int64_t>::max() / n)
      throw FormatError(where(label, t.name) + "dimensions overflow");
    numel *= n;
    t.ne.push_back(n);
  }
  t.type = c.read<uint32_t>("tensor type");
  t.offset = c.read<uint64_t>("tensor offset");
  const GgmlTypeInfo* g = find_ggml_type(t.type);
  if (g == nullptr) {
    t.type_name = "type " + std::to_string(t.type);
    return t;
  }
  t.type_name = g->name;
  if (!t.ne.empty() && t.ne[0] % g->block != 0)
    throw FormatError(where(label, t.name) + "first dimension " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                      g->name + " block size " + std::to_string(g->block));
  // As llama.cpp's gguf reader: the byte size must fit in 63 bits (a [2^31, 2^31] F64 tensor
  // would wrap to 0 bytes).
  uint64_t blocks = numel / g->block;
  if (g->bytes != 0 && blocks > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / g->bytes)
    throw FormatError(where(label, t.name) + "shape " + shape_text(t.ne) + " of " + g->name + " needs more than 2^63 bytes; hint: corrupt header");
  t.nbytes = blocks * g->bytes;
  return t;
}

}  // namespace

std::vector<uint64_t> GgufTensor::shape() const { return {ne.rbegin(), ne.rend()}; }
uint64_t GgufTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

const nlohmann::ordered_json* GgufFile::find_value(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &(*it)["value"];
}

GgufFile parse_gguf(std::span<const std::byte> file, const std::string& label) {
  Cursor c(file, label);
  GgufFile g;
  g.file_size = file.size();
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != 0x46554747u) throw FormatError(label + ": bad magic (expected \"GGUF\"); hint: not a GGUF file");
  g.version = c.read<uint32_t>("version");
  if (g.version != 2 && g.version != 3)
    throw UnsupportedError(label + ": GGUF version " + std::to_string(g.version) + " (supported: 2 and 3)");
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("key/value count");
  if (n_kv > c.remaining() / 13) c.fail("key/value count " + std::to_string(n_kv) + " is larger than the file can hold");
  if (n_tensors > c.remaining() / 24) c.fail("tensor count " + std::to_string(n_tensors) + " is larger than the file can hold");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    uint32_t type = c.read<uint32_t>("value type");
    if (type > kF64) c.fail("key \"" + key + "\" has unknown value type " + std::to_string(type));
    ojson value = read_value(c, type, 0);
    if (g.metadata.contains(key)) c.fail("key \"" + key + "\" appears twice");
    ojson entry = {{"type", kValueTypeNames[type]}};
    if (type == kArray) {
      entry["elem_type"] = value["elem_type"];
      entry["value"] = std::move(value["values"]);
    } else {
      entry["value"] = std::move(value);
    }
    g.metadata[key] = std::move(entry);
  }
  if (const auto* a = g.find_value("general.alignment")) {
    if (!a->is_number_unsigned() || a->get<uint64_t>() == 0 || (a->get<uint64_t>() & (a->get<uint64_t>() - 1)) != 0)
      throw FormatError(label + ": general.alignment must be a power of two, found " +
                        a->dump(-1, ' ', false, ojson::error_handler_t::replace));  // GGUF strings need not be UTF-8
    g.alignment = a->get<uint64_t>();
  }
  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    g.tensors.push_back(read_tensor_info(c, label));
    if (!names.insert(g.tensors.back().name).second) throw FormatError(where(label, g.tensors.back().name) + "appears twice");
  }
  g.data_start = (c.pos() + g.alignment - 1) / g.alignment * g.alignment;
  for (const auto& t : g.tensors) {
    if (t.offset % g.alignment != 0)
      throw FormatError(where(label, t.name) + "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(g.alignment));
    if (g.data_start > g.file_size || t.offset > g.file_size - g.data_start || t.nbytes > g.file_size - g.data_start - t.offset)
      throw FormatError(where(label, t.name) + "data [" + std::to_string(g.data_start + t.offset) + ", +" + std::to_string(t.nbytes) +
                        ") runs past the end of the file (" + std::to_string(g.file_size) + " bytes); hint: truncated");
  }
  return g;
}

GgufFile read_gguf(const std::filesystem::path& path) {
  MappedFile map(path);
  return parse_gguf(map.bytes(), path.string());
}

bool looks_like_gguf(const std::filesystem::path& path) {
  try {
    return read_file_prefix(path, 4) == "GGUF";
  } catch (const Error&) {
    return false;  // not a readable regular file: whoever opens it says why
  }
}

}  // namespace moeforge
