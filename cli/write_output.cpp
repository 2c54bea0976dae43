#include "cli/write_output.hpp"

#include <cstdio>

#include "cli/verb.hpp"
#include "core/strings.hpp"
#include "formats/sharded_writer.hpp"

namespace moeforge {

std::optional<DType> requested_dtype(const ParamValues& p) {
  return p.has("dtype") ? find_output_dtype(p.str("dtype")) : std::nullopt;
}

int write_output(Plan plan, const ParamValues& p, const RunContext& ctx) {
  if (!ctx.recipe.is_null()) {
    plan.provenance["recipe"] = ctx.recipe;
    plan.text_files["moeforge-recipe.yaml"] = ctx.recipe_yaml;
  }
  WriteOptions o;
  o.max_shard_size = p.size("max-shard-size");
  o.threads = static_cast<int>(p.integer("threads"));
  o.force = p.flag("force");
  std::string out = p.str("output");
  if (p.flag("dry-run")) {
    nlohmann::ordered_json d = describe_plan(plan, o);
    d["output"] = out;
    if (ctx.plan_out != nullptr) *ctx.plan_out = nlohmann::json(d);
    emit(p, d, [&] { print_plan(d); });
    return 0;
  }
  WriteReport r = write_checkpoint(plan, out, o);
  nlohmann::ordered_json j = {{"output", out}, {"files", r.files}, {"tensor_bytes", r.tensor_bytes}, {"seconds", r.seconds}};
  emit(p, j, [&] {
    std::printf("wrote %s: %zu tensors, %s in %zu file(s), %.2f s\n", out.c_str(), plan.tensors.size(),
                format_bytes(r.tensor_bytes).c_str(), r.files.size(), r.seconds);
  });
  return 0;
}

}  // namespace moeforge
