// Reproducible random numbers: the same (seed, key, index) gives the same value on every platform
// and for every chunking or thread count, so seeded outputs are byte-identical. SplitMix64 for
// bits, FNV-1a to turn names into keys, Box-Muller for normal deviates.
#pragma once
#include <cstdint>
#include <string_view>

namespace moeforge {

uint64_t fnv1a(std::string_view text);
uint64_t splitmix64(uint64_t x);

// A stream of deviates for one (seed, key); index picks the position in the stream.
class SeededStream {
 public:
  SeededStream(uint64_t seed, uint64_t key) : base_(splitmix64(seed ^ splitmix64(key))) {}
  double uniform(uint64_t index) const;  // in [0, 1)
  double normal(uint64_t index) const;   // standard normal

 private:
  uint64_t base_;
};

}  // namespace moeforge
