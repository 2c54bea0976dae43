#include "core/random.hpp"

#include <cmath>

namespace moeforge {

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double SeededStream::uniform(uint64_t index) const {
  return static_cast<double>(splitmix64(base_ + index) >> 11) * 0x1.0p-53;
}

double SeededStream::normal(uint64_t index) const {
  // Box-Muller on two uniforms drawn from the even/odd positions of the stream.
  double u1 = 1.0 - uniform(2 * index), u2 = uniform(2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace moeforge
