// RoPE frequencies: the plain, linear and llama3 rope_scaling rules, against formulas written out
// here, and the rotation of a vector.
#include <doctest/doctest.h>

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
  CHECK_THROWS_WITH_AS(Rope(config({{"rope_type", "yarn"}, {"factor", 4.0}}), 64), doctest::Contains("rope_scaling type \"yarn\""), UnsupportedError);
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
