// The safetensors reader against the official samples and a table of malformed files.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "formats/safetensors.hpp"
#include "formats/tensor_reader.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using nlohmann::json;

namespace {

std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string hex_of(std::span<const std::byte> b) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    out += kHex[static_cast<uint8_t>(c) >> 4];
    out += kHex[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

// Parses `header` + `data` and returns the FormatError message ("" if it parsed).
std::string error_of(const std::string& header, const std::string& data = "") {
  try {
    parse_safetensors(as_bytes(file_bytes(header, data)), "bad.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

void check_file(const json& expect, const std::string& file) {
  SafetensorsFile f(test::fixture("safetensors-samples/" + file));
  CHECK(f.header().header_len == expect["header_len"].get<uint64_t>());
  CHECK(f.header().data_start == expect["data_start"].get<uint64_t>());
  CHECK(f.metadata() == expect["metadata"].get<std::map<std::string, std::string>>());
  REQUIRE(f.tensors().size() == expect["tensors"].size());
  for (const auto& et : expect["tensors"]) {
    auto it = std::find_if(f.tensors().begin(), f.tensors().end(), [&](const TensorInfo& t) { return t.name == et["name"]; });
    REQUIRE(it != f.tensors().end());
    CHECK(dtype_name(it->dtype) == et["dtype"].get<std::string>());
    CHECK(it->shape == et["shape"].get<Shape>());
    CHECK(it->begin == et["data_offsets"][0].get<uint64_t>());
    CHECK(it->end == et["data_offsets"][1].get<uint64_t>());
    CHECK(hex_of(f.data(*it)) == et["raw_hex"].get<std::string>());
    std::vector<double> values = read_f64(*it);
    REQUIRE(values.size() == et["values"].size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (et["values"][i].is_boolean()) CHECK(values[i] == (et["values"][i].get<bool>() ? 1.0 : 0.0));
      else CHECK(values[i] == et["values"][i].get<double>());
    }
    if (et.contains("bits_hex")) {
      for (size_t i = 0; i < et["bits_hex"].size(); ++i) {
        uint16_t b;
        std::memcpy(&b, f.data(*it).data() + 2 * i, 2);
        CHECK(b == std::stoul(et["bits_hex"][i].get<std::string>(), nullptr, 16));
      }
    }
  }
}

}  // namespace

TEST_CASE("official safetensors samples decode to the listed values") {
  json expected = json::parse(test::read_text(test::fixture("safetensors-samples/expected.json")));
  for (const auto& f : expected["files"]) {
    CAPTURE(f["file"].get<std::string>());
    check_file(f, f["file"].get<std::string>());
  }
  for (const auto& f : expected["extra_generated_files"]) {
    CAPTURE(f["file"].get<std::string>());
    check_file(f, f["file"].get<std::string>());
  }
}

TEST_CASE("bf16 edge cases: float32 sources round to the stored bits") {
  json expected = json::parse(test::read_text(test::fixture("safetensors-samples/expected.json")));
  for (const auto& t : expected["extra_generated_files"][0]["tensors"]) {
    if (t["name"] != "bf16_rne_from_f32") continue;
    REQUIRE(t.contains("source_f32_bits_hex"));
    for (size_t i = 0; i < t["source_f32_bits_hex"].size(); ++i) {
      uint32_t src = static_cast<uint32_t>(std::stoul(t["source_f32_bits_hex"][i].get<std::string>(), nullptr, 16));
      float f;
      std::memcpy(&f, &src, 4);
      CHECK(f32_to_bf16(f) == std::stoul(t["bits_hex"][i].get<std::string>(), nullptr, 16));
    }
  }
}

TEST_CASE("malformed safetensors headers give one clear error naming file and tensor") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK(error_of(ok, std::string(8, '\0')).empty());

  struct Case {
    const char* what;
    std::string header, data, expect;
  };
  std::vector<Case> cases = {
      {"bad JSON", "{\"a\":", "", "not valid JSON"},
      {"not an object", "[1,2]", "", "does not start with '{'"},
      {"unknown dtype", R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0), "tensor 'a': unknown dtype \"F12\""},
      {"shape x dtype != bytes", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 0), "tensor 'a': shape [3] of F32 needs 12 bytes, data_offsets span 8"},
      {"offsets past end", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, 0), "tensor 'a': data area is 4 bytes"},
      {"trailing bytes", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(12, 0), "trailing bytes"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 0), "tensor 'b': overlap"},
      {"gap", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", std::string(12, 0), "tensor 'b': gap"},
      {"duplicate names", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 0), "tensor 'a': name appears more than once"},
      {"metadata not strings", R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, 0), "tensor '__metadata__': value of \"k\" must be a string"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, 0), "tensor 'a': every shape dimension must be a non-negative integer"},
      {"offsets reversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", std::string(4, 0), "tensor 'a': data_offsets [4, 0] end before they begin"},
      {"offsets not a pair", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", std::string(4, 0), "tensor 'a': \"data_offsets\" must be an array of two integers"},
      {"missing dtype", R"({"a":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, 0), "tensor 'a': missing or non-string \"dtype\""},
      {"shape overflow", R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", std::string(8, 0), "tensor 'a': shape [4294967296, 4294967296] overflows"},
      {"invalid UTF-8", std::string("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), std::string(4, 0), "not valid JSON"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    std::string msg = error_of(c.header, c.data);
    CHECK(msg.find("bad.safetensors: ") == 0);
    CHECK(msg.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("truncated files and impossible header lengths") {
  std::string good = file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0));
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(parse_safetensors(as_bytes(good.substr(0, n)), "t.safetensors"), FormatError);
  }
  std::string huge(8, '\0');
  huge[7] = 0x7f;  // header length far beyond the cap
  CHECK_THROWS_WITH_AS(parse_safetensors(as_bytes(huge + "{}"), "h.safetensors"), doctest::Contains("exceeds"), FormatError);
  std::string past = file_bytes("{}", "");
  past[0] = 100;  // claims 100 header bytes, file has 2
  CHECK_THROWS_WITH_AS(parse_safetensors(as_bytes(past), "p.safetensors"), doctest::Contains("runs past the end of the file"), FormatError);
}

TEST_CASE("zero-size tensors may share an offset") {
  std::string h = R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
  auto parsed = parse_safetensors(as_bytes(file_bytes(h, std::string(4, 0))), "z.safetensors");
  CHECK(parsed.tensors.size() == 3);
}
