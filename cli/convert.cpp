// moeforge convert IN OUT: rewrite a checkpoint with another dtype and/or shard size.
#include "cli/checkpoint_source.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "formats/convert_plan.hpp"

namespace moeforge {

Verb convert_verb() {
  using T = ParamType;
  Verb v;
  v.name = "convert";
  v.description = "rewrite a checkpoint: change float dtype (bf16/f16/f32) and/or reshard";
  v.params = with(with({
      {.name = "input", .type = T::kPath, .help = "checkpoint to read", .positional = true, .required = true},
      {.name = "output", .type = T::kPath, .help = "directory to write, or a .gguf file", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
  }, writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    auto in = open_checkpoint(ctx, p.str("input"));
    Plan plan = plan_convert(*in, requested_dtype(p));
    plan.provenance = provenance(v, p);
    return write_output(plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
