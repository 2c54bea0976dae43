// moeforge diff A B: tensor-by-tensor comparison; exit status 0 when equal within --atol.
#include "cli/checkpoint_source.hpp"
#include "cli/verb.hpp"
#include "cli/report_printers.hpp"
#include "core/error.hpp"
#include "formats/checkpoint_diff.hpp"

namespace moeforge {

Verb diff_verb() {
  using T = ParamType;
  Verb v;
  v.name = "diff";
  v.description = "compare two checkpoints tensor by tensor (exit 0: equal within --atol, 1: different)";
  v.params = with({
      {.name = "a", .type = T::kPath, .help = "first checkpoint", .positional = true, .required = true},
      {.name = "b", .type = T::kPath, .help = "second checkpoint (the reference for relative L2)", .positional = true, .required = true},
      {.name = "atol", .type = T::kFloat, .default_value = "0", .help = "largest absolute difference still counted as equal", .min = 0.0},
      {.name = "max-rows", .type = T::kInt, .default_value = "50", .help = "differing tensors listed in text output", .min = 0.0},
      threads_param(),
  }, output_params());
  v.run = [](const ParamValues& p, const RunContext&) {
    auto a = open_checkpoint(RunContext{}, p.str("a")), b = open_checkpoint(RunContext{}, p.str("b"));
    auto report = diff_checkpoints(*a, *b, {p.number("atol"), p.count("threads")});
    emit(p, report, [&] { print_diff(report, static_cast<size_t>(p.integer("max-rows"))); });
    return report["equal"].get<bool>() ? 0 : static_cast<int>(ExitCode::kDifferent);
  };
  return v;
}

}  // namespace moeforge
