// A Plan is what every writing verb builds before touching the disk: the output config and an
// ordered list of output tensors, each with a producer that fills any range of its rows on
// demand. --dry-run prints the plan; the ShardedWriter executes it.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/tensor_info.hpp"

namespace moeforge {

// Fills rows [row_begin, row_end) of the tensor, encoded in its dtype, at out.
using Producer = std::function<void(int64_t row_begin, int64_t row_end, std::byte* out)>;

struct OutputTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  Producer produce;
  bool whole = false;  // the producer must be called once for all rows (e.g. an SVD result)
  std::string source;  // for --dry-run: where the values come from
  const TensorInfo* copy_of = nullptr;  // the values are exactly this tensor's, in its dtype (copy_tensor)

  int64_t rows() const { return shape.size() < 2 ? 1 : shape[0]; }
  uint64_t row_bytes() const;
  uint64_t nbytes() const { return static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype); }
};

// How routed experts are stored (formats/expert_layout.hpp).
enum class ExpertLayout { kPerExpert, kFused };

struct Plan {
  nlohmann::json config;  // config.json to write; null writes none
  std::vector<OutputTensor> tensors;
  std::vector<std::filesystem::path> side_files;         // copied unchanged (tokenizer files ...)
  std::map<std::string, std::string> text_files;         // extra files written as given into the output directory
  std::map<std::filesystem::path, std::string> extra_files;  // files outside it (--report, --plot), committed with it
  nlohmann::json provenance = nlohmann::json::object();  // moeforge.json (plus its "files" list) and __metadata__
  std::vector<std::filesystem::path> inputs;             // the output must not overwrite these
  std::vector<std::string> notes;                        // shown by --dry-run
  ExpertLayout expert_layout = ExpertLayout::kPerExpert;  // the input's; writers' --layout overrides

  uint64_t total_bytes() const;
};

// An exact copy of a tensor (bit for bit when dtype matches), or converted through float32.
OutputTensor copy_tensor(const TensorInfo& source, const std::string& out_name, DType out_dtype);

// The dtype an output should get: the requested one, or the source's when none was requested.
DType output_dtype(const std::optional<DType>& requested, DType source);

}  // namespace moeforge
