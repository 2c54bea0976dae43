// ggml encoders and decoders against llama.cpp's own bytes (tests/data/quant-vectors: 14 seeded
// rows quantised by the llama.cpp that node-llama-cpp 3.22.1 ships): encoding must give the same
// bytes, decoding the same float32 bits, for every row and type.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "formats/ggml_quants.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;

namespace {

std::filesystem::path vectors() { return std::filesystem::path(MOEFORGE_SOURCE_DIR) / "tests/data/quant-vectors"; }

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

// Bit equality, except that any NaN equals any NaN (f16/bf16 → f32 decodes keep no payload rule).
bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

struct Case {
  std::string row, type;
  std::vector<float> input;
  std::string bytes;
  std::vector<float> decoded;
};

std::vector<Case> cases() {
  auto index = nlohmann::json::parse(read_text(vectors() / "index.json"));
  std::vector<Case> out;
  for (const auto& v : index["vectors"])
    for (const auto& [type, o] : v["outputs"].items())
      out.push_back({v["name"], type, floats(read_text(vectors() / v["input"].get<std::string>())),
                     read_text(vectors() / o["quantized"].get<std::string>()), floats(read_text(vectors() / o["dequantized"].get<std::string>()))});
  return out;
}

}  // namespace

TEST_CASE("ggml quantisers: bytes equal llama.cpp's on every reference row") {
  auto all = cases();
  REQUIRE(all.size() >= 100);
  int encoded = 0, decoded = 0;
  for (const auto& c : all) {
    CAPTURE(c.row);
    CAPTURE(c.type);
    GgmlType t = *find_ggml_type_by_name(c.type);
    auto n = static_cast<int64_t>(c.input.size());
    REQUIRE(c.bytes.size() == ggml_row_bytes(t, static_cast<uint64_t>(n)));
    if (can_encode_ggml(t)) {
      std::string mine(c.bytes.size(), '\0');
      encode_ggml(t, c.input.data(), n, reinterpret_cast<std::byte*>(mine.data()));
      size_t first = 0;
      while (first < mine.size() && mine[first] == c.bytes[first]) ++first;
      CHECK_MESSAGE(first == mine.size(), "first differing byte " << first);
      ++encoded;
    }
    std::vector<float> back(c.input.size());
    decode_ggml(t, reinterpret_cast<const std::byte*>(c.bytes.data()), n, back.data());
    int differ = 0;
    for (size_t i = 0; i < back.size(); ++i) differ += !same_bits(back[i], c.decoded[i]);
    CHECK(differ == 0);
    ++decoded;
  }
  CHECK(encoded == 13 * 5 + 14 * 2);  // q8_0 q4_0 q4_K q5_K q6_K on 13 rows (mxfp4 is decoded only), f16/bf16 on 14
  CHECK(decoded == static_cast<int>(all.size()));
}

TEST_CASE("ggml quantisers: a row split into blocks is the blocks quantised one by one") {
  std::vector<float> x(1024);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7));
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    CAPTURE(ggml_type_name(t));
    std::vector<std::byte> whole(ggml_row_bytes(t, 1024)), parts(whole.size());
    encode_ggml(t, x.data(), 1024, whole.data());
    uint64_t half = ggml_row_bytes(t, 512);
    encode_ggml(t, x.data(), 512, parts.data());
    encode_ggml(t, x.data() + 512, 512, parts.data() + half);
    CHECK(whole == parts);
  }
}

TEST_CASE("q8_0: halfway products round away from zero, as roundf; blocks with Inf or NaN do not crash") {
  // amax 127 makes d = 1 and id = 1: every x·id is x itself, so halves are met exactly.
  std::vector<float> x(64);
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = j == 0 ? 127.0f : static_cast<float>(j % 9) - 4.5f;
  for (int j = 32; j < 64; ++j) x[static_cast<size_t>(j)] = std::ldexp(static_cast<float>(j - 48), -30);  // tiny values
  std::vector<std::byte> q(ggml_row_bytes(GgmlType::kQ8_0, 64));
  encode_ggml(GgmlType::kQ8_0, x.data(), 64, q.data());
  for (int j = 1; j < 32; ++j) {
    CAPTURE(j);
    CHECK(static_cast<int8_t>(q[static_cast<size_t>(2 + j)]) == static_cast<int8_t>(std::round(x[static_cast<size_t>(j)])));
  }
  const float d = 16.0f * std::ldexp(1.0f, -30) / 127.0f, id = 1.0f / d;
  for (int j = 32; j < 64; ++j) CHECK(static_cast<int8_t>(q[static_cast<size_t>(36 + j - 32)]) == static_cast<int8_t>(std::round(x[static_cast<size_t>(j)] * id)));
  x[40] = INFINITY;
  encode_ggml(GgmlType::kQ8_0, x.data(), 64, q.data());  // the scalar path takes that block; the first is unchanged
  CHECK(static_cast<int8_t>(q[3]) == static_cast<int8_t>(std::round(x[1])));
}
