// Turns a Plan (Hugging Face tensors and config.json, as every writing verb builds it) into a
// GgufPlan llama.cpp loads: GGUF names, experts stacked per layer, llama's q/k rows permuted,
// DeepSeek's kv_b split, each tensor's ggml type chosen as llama.cpp's converter and quantizer
// do, the metadata keys, and the vocabulary. Tensors that are byte copies of GGUF blocks (a
// GGUF input read through its views) are copied as blocks when their type is kept.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "formats/ggml_types.hpp"
#include "formats/gguf_writer.hpp"
#include "formats/plan.hpp"

namespace moeforge {

struct GgufExportOptions {
  std::optional<GgmlType> type;            // --dtype; nullopt keeps each tensor's own type
  std::string name;                        // general.name
  nlohmann::ordered_json vocabulary;       // tokenizer.* entries, appended after the model keys
  std::optional<uint32_t> file_type;       // general.file_type to keep (a GGUF input's), else derived
};

// Throws UnsupportedError for families or configs llama.cpp cannot represent, UsageError for a
// plan whose MoE layers hold different expert counts (listing them).
GgufPlan plan_gguf(const Plan& plan, const GgufExportOptions& options);

// llama_ftype for general.file_type.
uint32_t gguf_file_type(std::optional<GgmlType> type, GgmlType most_common);

}  // namespace moeforge
