// The last step of every writing verb: --dry-run prints the plan, otherwise the writer runs and
// a short report (or JSON) follows.
#pragma once
#include <optional>

#include "core/params.hpp"
#include "formats/plan.hpp"

namespace moeforge {

std::optional<DType> requested_dtype(const ParamValues& p);
int write_output(const Plan& plan, const ParamValues& p, const std::string& output_key = "output");

}  // namespace moeforge
