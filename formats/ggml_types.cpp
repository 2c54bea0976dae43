#include "formats/ggml_types.hpp"

#include <cctype>

#include "core/error.hpp"

namespace moeforge {
namespace {

// Indexed by ggml type id (ggml.h); ids that ggml retired have no entry (name == nullptr).
constexpr GgmlTypeInfo kTypes[] = {
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},        {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},       {nullptr, 0, 0},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
    {nullptr, 0, 0},      {nullptr, 0, 0},     {nullptr, 0, 0},      {"MXFP4", 32, 17},
};
constexpr uint32_t kTypeCount = sizeof(kTypes) / sizeof(kTypes[0]);

}  // namespace

const GgmlTypeInfo* find_ggml_type(uint32_t id) {
  if (id >= kTypeCount || kTypes[id].name == nullptr) return nullptr;
  return &kTypes[id];
}

const GgmlTypeInfo& ggml_type_info(GgmlType t) {
  const GgmlTypeInfo* info = find_ggml_type(static_cast<uint32_t>(t));
  if (info == nullptr) throw Error(ExitCode::kInternal, "undefined ggml type " + std::to_string(static_cast<uint32_t>(t)));
  return *info;
}

std::optional<GgmlType> find_ggml_type_by_name(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint32_t id = 0; id < kTypeCount; ++id)
    if (kTypes[id].name != nullptr && upper == kTypes[id].name) return static_cast<GgmlType>(id);
  return std::nullopt;
}

uint64_t ggml_row_bytes(GgmlType t, uint64_t ne0) {
  const GgmlTypeInfo& info = ggml_type_info(t);
  return ne0 / info.block * info.bytes;
}

}  // namespace moeforge
