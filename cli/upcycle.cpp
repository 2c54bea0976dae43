// moeforge upcycle MODEL --experts E OUT: an MoE whose experts are copies (or neuron slices) of
// a dense model's FFN, reproducing the dense model at initialisation.
#include <memory>

#include "cli/router_options.hpp"
#include "cli/checkpoint_source.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "core/file_io.hpp"
#include "merge/upcycle.hpp"

namespace moeforge {

Verb upcycle_verb() {
  using T = ParamType;
  Verb v;
  v.name = "upcycle";
  v.description = "sparse upcycling: copy (or split) a dense model's FFNs into MoE experts";
  v.params = with(with(with({
      {.name = "model", .type = T::kPath, .help = "dense model", .positional = true, .required = true},
      {.name = "output", .type = T::kPath, .help = "directory to write, or a .gguf file", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "experts", .type = T::kInt, .default_value = "8", .help = "copies of each FFN", .min = 1.0},
      {.name = "granularity", .type = T::kInt, .default_value = "1", .help = "split each copy into this many experts by neurons", .min = 1.0},
      {.name = "experts-per-token", .type = T::kInt, .default_value = "2", .help = "copies each token is routed to (× granularity experts)", .min = 1.0},
      {.name = "noise", .type = T::kFloat, .default_value = "0", .help = "standard deviation of seeded noise added to every expert weight", .min = 0.0},
      {.name = "output-arch", .type = T::kChoice, .help = "target family (default by input family)", .choices = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"}},
  }, router_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    auto model = open_checkpoint(ctx, p.str("model"));
    UpcycleSpec s;
    s.model = model.get();
    s.copies = p.count("experts");
    s.granularity = p.count("granularity");
    s.experts_per_token = p.count("experts-per-token");
    s.noise = p.number("noise");
    s.seed = static_cast<uint64_t>(p.integer("seed"));
    s.output_arch = p.str("output-arch");
    s.dtype = requested_dtype(p);
    if (!p.flag("dry-run")) s.free_bytes = free_bytes_at(output_path(p.str("output")));
    s.router = router_init(p, model->has_config() ? model->config().value("vocab_size", int64_t{0}) : 0, model->path());
    Plan plan = plan_upcycle(s);
    plan.provenance = provenance(v, p);
    return write_output(plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
