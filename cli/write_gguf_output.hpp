// The GGUF branch of write_output: a verb's Plan (Hugging Face names) becomes a GgufPlan with the
// model's vocabulary and is printed (--dry-run) or written as one .gguf or llama.cpp split files.
#pragma once
#include "core/params.hpp"
#include "core/verb.hpp"
#include "formats/plan.hpp"

namespace moeforge {

// True when the command's output is GGUF (--format gguf, or an output path ending in .gguf).
bool writes_gguf(const ParamValues& p);
int write_gguf_output(const Plan& plan, const ParamValues& p, const RunContext& ctx);

}  // namespace moeforge
