// The last step of every writing verb: --dry-run prints the plan, otherwise the writer runs and
// a short report (or JSON) follows.
#pragma once
#include <optional>

#include "core/params.hpp"
#include "core/verb.hpp"
#include "formats/plan.hpp"

namespace moeforge {

std::optional<DType> requested_dtype(const ParamValues& p);
// With a recipe context, the resolved recipe goes into the provenance and beside the output.
int write_output(Plan plan, const ParamValues& p, const RunContext& ctx);

}  // namespace moeforge
