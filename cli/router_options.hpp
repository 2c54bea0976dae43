// Router initialisation options shared by compose and upcycle (--router, --router-std, --seed,
// --router-lambda, --router-scale, --router-data/--router-bytes, --negative-data/--negative-bytes
// and the window options).
#pragma once
#include "core/params.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

ParamTable router_params();
// --router-lambda and --router-scale (also fit-router's).
ParamTable router_fit_params();
FitOptions router_fit_options(const ParamValues& p);
// Text data is read with the tokenizer of `model` (or --tokenizer).
RouterInit router_init(const ParamValues& p, int64_t vocab, const std::filesystem::path& model);

}  // namespace moeforge
