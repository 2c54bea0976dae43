// Opens a verb's input checkpoint: from disk, or — in a recipe's dry run — from the plan of the
// earlier step that would have written it (names, dtypes, shapes and config; no data). A GGUF file
// is read under Hugging Face names (model/gguf_checkpoint.hpp).
#pragma once
#include <memory>

#include "core/verb.hpp"
#include "formats/checkpoint.hpp"

namespace moeforge {

std::unique_ptr<Checkpoint> open_checkpoint(const RunContext& ctx, const std::string& path);

}  // namespace moeforge
