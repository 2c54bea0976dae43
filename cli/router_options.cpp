#include "cli/router_options.hpp"

#include "cli/data_options.hpp"

namespace moeforge {

ParamTable router_params() {
  using T = ParamType;
  return with({
      {.name = "router", .type = T::kChoice, .default_value = "random",
       .help = "router initialisation: random (normal, --router-std), zero, embed (mean token embedding of each expert's data), "
               "hidden (mean router input of the base model on each expert's data), centroid (the same in each expert's own model); "
               "mergekit-moe's gate modes: mergekit-hidden, cheap-embed, uniform-random",
       .choices = {"random", "zero", "embed", "hidden", "centroid", "mergekit-hidden", "cheap-embed", "uniform-random"}},
      {.name = "router-std", .type = T::kFloat, .default_value = "0.02", .help = "standard deviation of --router random", .min = 0.0},
      {.name = "seed", .type = T::kInt, .default_value = "0", .help = "seed for random routers and noise (same seed, same bytes)", .min = 0.0},
      {.name = "router-data", .type = T::kPathList, .help = "one data file (text or token ids) per expert, in expert order (embed/hidden/centroid)", .greedy = true},
      {.name = "router-bytes", .type = T::kPathList, .help = "one byte file per expert, in expert order (byte-level models)", .greedy = true},
      {.name = "negative-data", .type = T::kPathList, .help = "data (text or token ids) whose mean is subtracted: one file for all experts or one per expert", .greedy = true},
      {.name = "negative-bytes", .type = T::kPathList, .help = "byte data whose mean is subtracted: one file for all experts or one per expert", .greedy = true},
  }, window_params());
}

RouterInit router_init(const ParamValues& p, int64_t vocab, const std::filesystem::path& model) {
  RouterInit r;
  r.method = parse_router_method(p.str("router"));
  r.std = p.number("router-std");
  r.seed = static_cast<uint64_t>(p.integer("seed"));
  r.threads = p.count("threads");
  r.positive = load_files(p, "router-data", "router-bytes", vocab, model);
  r.negative = load_files(p, "negative-data", "negative-bytes", vocab, model, true);  // an empty file: no negatives for that expert
  return r;
}

}  // namespace moeforge
