// Sparse upcycling: a dense model becomes an MoE whose experts are copies of its FFN.
// With --granularity m each copy is split into m experts by partitioning its neurons (expert
// c·m + j holds neurons [j·I/m, (j+1)·I/m) of copy c); all m parts of a copy share one router row
// ("virtual group"), experts-per-token becomes m × k and the down projections are scaled by m,
// so whatever the router chooses the MoE computes exactly the dense FFN at initialisation
// (renormalised top-k; exact in float arithmetic when m is a power of two). qwen2_moe keeps the
// dense FFN as its shared expert, halved by sigmoid(0) of a zero gate, and halves the routed
// experts. --noise adds seeded N(0, std²) noise to every expert copy to break the symmetry.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "formats/plan.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

struct UpcycleSpec {
  const Checkpoint* model = nullptr;
  int copies = 8;
  int granularity = 1;
  int experts_per_token = 2;  // per copy; the MoE routes to granularity × this many experts
  double noise = 0.0;
  uint64_t seed = 0;
  std::string output_arch;
  std::optional<DType> dtype;
  RouterInit router;
  uint64_t free_bytes = UINT64_MAX;  // space where the output goes: a larger model is refused before planning
};

// Upcycled MoEs have at most this many experts per layer (no runtime loads more; a typo like
// `experts: 2000000` must fail in a second, not after minutes of planning).
inline constexpr int kMaxUpcycledExperts = 65536;

Plan plan_upcycle(const UpcycleSpec& spec);

}  // namespace moeforge
