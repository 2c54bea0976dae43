// RoPE frequencies: the plain, linear and llama3 rope_scaling rules, against formulas written out
// here, and the rotation of a vector.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "engine/rope.hpp"

using namespace moeforge;

namespace {

ModelConfig config(nlohmann::json rope_scaling) {
  nlohmann::json c = {{"model_type", "llama"}, {"num_hidden_layers", 1}, {"hidden_size", 64}, {"vocab_size", 10},
                      {"num_attention_heads", 1}, {"rope_theta", 500000.0}, {"rope_scaling", rope_scaling}};
  return resolve_config(c, "c.json");
}

}  // namespace

TEST_CASE("rope frequencies: default, linear, llama3") {
  Rope plain(config(nullptr), 64);
  for (int i = 0; i < 32; ++i) CHECK(plain.inv_freq()[i] == doctest::Approx(std::pow(500000.0, -2.0 * i / 64)).epsilon(1e-6));
  Rope linear(config({{"rope_type", "linear"}, {"factor", 4.0}}), 64);
  for (int i = 0; i < 32; ++i) CHECK(linear.inv_freq()[i] == doctest::Approx(plain.inv_freq()[i] / 4).epsilon(1e-6));
  nlohmann::json l3 = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  Rope llama3(config(l3), 64);
  for (int i = 0; i < 32; ++i) {
    double f = plain.inv_freq()[i], wavelen = 2 * M_PI / f, want;
    if (wavelen < 8192.0 / 4) want = f;                 // high frequencies unchanged
    else if (wavelen > 8192.0 / 1) want = f / 8;        // low frequencies divided by the factor
    else {                                              // smooth interpolation between the two
      double smooth = (8192.0 / wavelen - 1) / (4 - 1);
      want = (1 - smooth) * f / 8 + smooth * f;
    }
    CHECK(llama3.inv_freq()[i] == doctest::Approx(want).epsilon(1e-6));
  }
  CHECK_THROWS_WITH_AS(Rope(config({{"rope_type", "longrope"}, {"factor", 4.0}}), 64), doctest::Contains("rope_scaling type \"longrope\""), UnsupportedError);
  CHECK_THROWS_WITH_AS(Rope(config({{"rope_type", "yarn"}, {"factor", 4.0}}), 64), doctest::Contains("needs original_max_position_embeddings"), FormatError);
}

// YaRN as written in the YaRN paper / transformers' _compute_yarn_parameters, in double here.
std::vector<double> yarn_formula(double theta, int d, double factor, double orig, double beta_fast, double beta_slow, bool truncate) {
  auto corr = [&](double rot) { return d * std::log(orig / (rot * 2 * M_PI)) / (2 * std::log(theta)); };
  double low = corr(beta_fast), high = corr(beta_slow);
  if (truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, d - 1.0);
  if (low == high) high += 0.001;
  std::vector<double> out;
  for (int i = 0; i < d / 2; ++i) {
    double extra = std::pow(theta, -2.0 * i / d), inter = extra / factor;
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    out.push_back(inter * ramp + extra * (1 - ramp));
  }
  return out;
}

TEST_CASE("rope frequencies: YaRN with and without truncation; attention factor from mscale / mscale_all_dim") {
  nlohmann::json ds = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32}, {"mscale", 0.707},
                       {"mscale_all_dim", 1.0}, {"beta_fast", 32.0}, {"beta_slow", 1.0}};
  nlohmann::json c = {{"model_type", "llama"}, {"num_hidden_layers", 1}, {"hidden_size", 64}, {"vocab_size", 10},
                      {"num_attention_heads", 1}, {"rope_theta", 50000.0}, {"rope_scaling", ds}};
  Rope yarn(resolve_config(c, "c.json"), 8);
  auto want = yarn_formula(50000.0, 8, 4.0, 32, 32, 1, true);
  for (int i = 0; i < 4; ++i) CHECK(yarn.inv_freq()[i] == doctest::Approx(want[i]).epsilon(1e-6));
  // tiny-deepseek-v3-yarn (FACTS.md): (0.1·0.707·ln 4 + 1) / (0.1·ln 4 + 1) = 0.96434
  CHECK(yarn.attention_factor() == doctest::Approx(0.96434).epsilon(1e-5));
  nlohmann::json oss = {{"rope_type", "yarn"}, {"factor", 32.0}, {"original_max_position_embeddings", 4096}, {"truncate", false}};
  c["rope_theta"] = 150000.0;
  c["rope_scaling"] = oss;
  Rope untruncated(resolve_config(c, "c.json"), 64);
  want = yarn_formula(150000.0, 64, 32.0, 4096, 32, 1, false);
  for (int i = 0; i < 32; ++i) CHECK(untruncated.inv_freq()[i] == doctest::Approx(want[i]).epsilon(1e-6));
  CHECK(untruncated.attention_factor() == doctest::Approx(0.1 * std::log(32.0) + 1).epsilon(1e-6));
}

TEST_CASE("rope in the interleaved layout rotates consecutive pairs") {
  Rope rope(config(nullptr), 8);
  rope.prepare(4);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, y = x;
  rope.apply_pairs(y.data(), 1, 8, 3);
  for (int i = 0; i < 4; ++i) {
    double a = 3 * static_cast<double>(rope.inv_freq()[i]);
    CHECK(y[2 * i] == doctest::Approx(x[2 * i] * std::cos(a) - x[2 * i + 1] * std::sin(a)).epsilon(1e-5));
    CHECK(y[2 * i + 1] == doctest::Approx(x[2 * i + 1] * std::cos(a) + x[2 * i] * std::sin(a)).epsilon(1e-5));
  }
}

TEST_CASE("rope rotates pairs (i, i + d/2) by position × frequency") {
  Rope rope(config(nullptr), 64);
  rope.prepare(8);
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i + 1);
  std::vector<float> y = x;
  rope.apply(y.data(), 1, 64, 5);
  for (int i = 0; i < 32; ++i) {
    double a = 5 * static_cast<double>(rope.inv_freq()[i]);
    CHECK(y[i] == doctest::Approx(x[i] * std::cos(a) - x[i + 32] * std::sin(a)).epsilon(1e-5));
    CHECK(y[i + 32] == doctest::Approx(x[i + 32] * std::cos(a) + x[i] * std::sin(a)).epsilon(1e-5));
  }
}
