// Float conversions: every 16-bit pattern both ways, round-to-nearest-even at every midpoint,
// and an independent nearest-value reference for random float32 inputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "formats/dtype.hpp"

using namespace moeforge;

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Rounds x to the nearest of the sorted finite values (ties to the even bit pattern) by search:
// a reference that shares no code with the bit-twiddling converters.
// ggml's scalar rule: NaN → sign | 0x7E00, payload dropped.
uint16_t canonical_nan_f16(float f) { return std::isnan(f) ? static_cast<uint16_t>((std::signbit(f) ? 0x8000u : 0u) | 0x7E00u) : f32_to_f16(f); }

uint16_t nearest_f16_reference(double x, const std::vector<std::pair<double, uint16_t>>& table) {
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(x, uint16_t{0}),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
  if (it == table.end()) return 0x7c00;
  if (it == table.begin()) return it->second;
  auto lo = it - 1;
  double dl = x - lo->first, dh = it->first - x;
  if (dl < dh) return lo->second;
  if (dh < dl) return it->second;
  return (lo->second & 1) == 0 ? lo->second : it->second;
}

}  // namespace

TEST_CASE("bf16: every bit pattern survives bf16 -> f32 -> bf16") {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = bf16_to_f32(static_cast<uint16_t>(h));
    CHECK(bits(f) == (h << 16));
    uint16_t back = f32_to_bf16(f);
    if (std::isnan(f)) {
      CHECK(std::isnan(bf16_to_f32(back)));
      CHECK((back & 0x8000) == (h & 0x8000));
    } else {
      CHECK(back == h);
    }
  }
}

TEST_CASE("bf16: round to nearest even at and around every midpoint") {
  for (uint32_t h = 0; h < 65536; ++h) {
    uint32_t next = h + 1;
    if ((h & 0x7f80) == 0x7f80) continue;  // Inf/NaN: no upper neighbour
    uint32_t mid = (h << 16) | 0x8000u;  // exactly halfway between h and h+1 (same sign)
    uint16_t even = (h & 1) == 0 ? static_cast<uint16_t>(h) : static_cast<uint16_t>(next);
    CHECK(f32_to_bf16(from_bits(mid)) == even);
    CHECK(f32_to_bf16(from_bits(mid - 1)) == h);
    CHECK(f32_to_bf16(from_bits(mid + 1)) == static_cast<uint16_t>(next));
  }
  CHECK(f32_to_bf16(INFINITY) == 0x7f80);
  CHECK(f32_to_bf16(-INFINITY) == 0xff80);
  CHECK(f32_to_bf16(3.4e38f) == 0x7f80);  // rounds past the largest finite bf16
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST_CASE("f16: every bit pattern survives f16 -> f32 -> f16, values match IEEE decoding") {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 31) {
      CHECK((mant == 0 ? std::isinf(f) : std::isnan(f)));
    } else {
      double expect = exp == 0 ? sign * std::ldexp(mant, -24) : sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
      CHECK(static_cast<double>(f) == expect);
      CHECK(std::signbit(f) == ((h & 0x8000) != 0));
    }
    uint16_t back = f32_to_f16(f);
    if (std::isnan(f)) CHECK(std::isnan(f16_to_f32(back)));
    else CHECK(back == h);
  }
}

TEST_CASE("f16: round to nearest even at every midpoint, and against a search reference") {
  std::vector<std::pair<double, uint16_t>> table;
  for (uint32_t h = 0; h < 0x7c00; ++h) table.emplace_back(f16_to_f32(static_cast<uint16_t>(h)), static_cast<uint16_t>(h));
  table.emplace_back(65536.0, uint16_t{0x7c00});  // infinity sits where 2^16 would be
  for (size_t i = 0; i + 1 < table.size(); ++i) {
    double mid = (table[i].first + table[i + 1].first) / 2;  // exact in float32 (12 significant bits)
    float m = static_cast<float>(mid);
    REQUIRE(static_cast<double>(m) == mid);
    uint16_t even = (table[i].second & 1) == 0 ? table[i].second : table[i + 1].second;
    CHECK(f32_to_f16(m) == even);
    CHECK(f32_to_f16(std::nextafter(m, 0.0f)) == table[i].second);
    CHECK(f32_to_f16(std::nextafter(m, INFINITY)) == table[i + 1].second);
  }
  CHECK(f32_to_f16(65519.99f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);
  CHECK(f32_to_f16(-1e10f) == 0xfc00);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-20.0f, 17.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::ldexp(1.0f + (rng() % 8388608) / 8388608.0f, static_cast<int>(mag(rng)));
    CHECK(f32_to_f16(x) == nearest_f16_reference(x, table));
    CHECK(f32_to_f16(-x) == (nearest_f16_reference(x, table) | 0x8000));
  }
}

TEST_CASE("f16 arrays (eight at a time where the CPU has F16C) equal the scalar conversion, NaN rule included") {
  std::vector<float> x;
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 65521) {  // a stride through every exponent
    uint32_t u = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every f16 value, its midpoints' neighbours
    float f = f16_to_f32(static_cast<uint16_t>(h));
    for (float g : {f, std::nextafter(f, INFINITY), -std::nextafter(f, 0.0f)}) x.push_back(g);
  }
  for (float special : {INFINITY, -INFINITY, 65520.0f, 65519.99f, std::nanf("0x123"), -std::nanf("")}) x.push_back(special);
  x.push_back(1.0f);  // a length that leaves a tail
  auto halves = [&](auto&& convert) {
    std::vector<uint16_t> h(x.size());
    convert(x.data(), x.size(), reinterpret_cast<std::byte*>(h.data()));
    return h;
  };
  auto via_from_f32 = halves([](const float* s, size_t n, std::byte* d) { from_f32(DType::kF16, s, n, d); });
  auto via_ggml = halves([](const float* s, size_t n, std::byte* d) { f32_to_f16_array(s, n, d, canonical_nan_f16); });
  int differ = 0, differ_ggml = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    differ += via_from_f32[i] != f32_to_f16(x[i]);
    differ_ggml += via_ggml[i] != canonical_nan_f16(x[i]);
  }
  CHECK(differ == 0);
  CHECK(differ_ggml == 0);
}

TEST_CASE("f8 decoding") {
  CHECK(f8e4m3_to_f32(0x7e) == 448.0f);
  CHECK(std::isnan(f8e4m3_to_f32(0x7f)));
  CHECK(std::isnan(f8e4m3_to_f32(0xff)));
  CHECK(f8e4m3_to_f32(0x01) == std::ldexp(1.0f, -9));
  CHECK(f8e4m3_to_f32(0x38) == 1.0f);
  CHECK(f8e4m3_to_f32(0xb8) == -1.0f);
  CHECK(f8e5m2_to_f32(0x3c) == 1.0f);
  CHECK(f8e5m2_to_f32(0x7b) == 57344.0f);
  CHECK(std::isinf(f8e5m2_to_f32(0x7c)));
  CHECK(std::isnan(f8e5m2_to_f32(0x7d)));
  CHECK(f8e5m2_to_f32(0x01) == std::ldexp(1.0f, -16));
}

TEST_CASE("dtype names and sizes") {
  CHECK(find_dtype("BF16") == DType::kBF16);
  CHECK(find_dtype("F8_E4M3") == DType::kF8E4M3);
  CHECK_FALSE(find_dtype("bf16").has_value());
  CHECK(find_output_dtype("bf16") == DType::kBF16);
  CHECK(find_output_dtype("float16") == DType::kF16);
  CHECK(dtype_size(DType::kU64) == 8);
  CHECK(dtype_info(DType::kBF16).torch_name == "bfloat16");
  // The official serializer's order: I64 > F64 > F32 > I32 > BF16 > F16 > U8 > BOOL.
  CHECK(DType::kI64 > DType::kF64);
  CHECK(DType::kF64 > DType::kF32);
  CHECK(DType::kF32 > DType::kI32);
  CHECK(DType::kI32 > DType::kBF16);
  CHECK(DType::kBF16 > DType::kF16);
  CHECK(DType::kF16 > DType::kU8);
  CHECK(DType::kU8 > DType::kBool);
}

TEST_CASE("float64 to 16-bit floats rounds once (round-to-odd intermediate)") {
  // 1 + 2^-8 + 2^-30 lies just above a bf16 midpoint; rounding to float32 first lands exactly on
  // the midpoint and a second round-to-even would go down. One rounding must go up.
  double d = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  std::byte out[2];
  from_f64(DType::kBF16, &d, 1, out);
  uint16_t b;
  std::memcpy(&b, out, 2);
  CHECK(b == 0x3f81);
  CHECK(f32_to_bf16(static_cast<float>(d)) == 0x3f80);  // the double-rounding trap
  double e = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  from_f64(DType::kF16, &e, 1, out);
  std::memcpy(&b, out, 2);
  CHECK(b == 0x3c01);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {  // exact values agree with the float32 path
    float f = std::ldexp(static_cast<float>(rng() % 16777216) / 16777216.0f, static_cast<int>(rng() % 40) - 20);
    double dd = f;
    from_f64(DType::kBF16, &dd, 1, out);
    std::memcpy(&b, out, 2);
    CHECK(b == f32_to_bf16(f));
  }
}
