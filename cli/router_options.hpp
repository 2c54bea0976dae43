// Router initialisation options shared by compose and upcycle (--router, --router-std, --seed,
// --router-data/--router-bytes, --negative-data/--negative-bytes and the window options).
#pragma once
#include "core/params.hpp"
#include "merge/router_init.hpp"

namespace moeforge {

ParamTable router_params();
// Text data is read with the tokenizer of `model` (or --tokenizer).
RouterInit router_init(const ParamValues& p, int64_t vocab, const std::filesystem::path& model);

}  // namespace moeforge
