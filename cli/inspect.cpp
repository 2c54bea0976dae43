// moeforge inspect PATH: what a checkpoint or GGUF file holds.
#include "cli/verb.hpp"
#include "cli/report_printers.hpp"
#include "formats/checkpoint.hpp"
#include "formats/gguf.hpp"
#include "model/inspection.hpp"
#include "engine/stats_file.hpp"

namespace moeforge {

Verb inspect_verb() {
  using T = ParamType;
  Verb v;
  v.name = "inspect";
  v.description = "show what a checkpoint (safetensors file or directory, GGUF) holds";
  v.params = with({
      {.name = "path", .type = T::kPath, .help = "checkpoint directory, .safetensors or .gguf file", .positional = true, .required = true},
      {.name = "tensors", .type = T::kFlag, .help = "list every tensor: name, dtype, shape, shard, bytes"},
      {.name = "filter", .type = T::kString, .help = "only tensors whose name matches this regular expression"},
      {.name = "stats", .type = T::kFlag, .help = "per-tensor min/max/mean/std/L2 and NaN/Inf counts"},
      threads_param(),
  }, output_params());
  v.run = [](const ParamValues& p, const RunContext&) {
    InspectOptions o{p.flag("tensors"), p.str("filter"), p.flag("stats"), p.count("threads")};
    std::filesystem::path path = p.str("path");
    nlohmann::ordered_json report;
    if (std::filesystem::is_regular_file(path) && (looks_like_gguf(path) || path.extension() == ".gguf")) {
      report = inspect_gguf(read_gguf(path), path.string(), o);
    } else if (is_stats_file(path)) {
      report = describe_stats(read_stats(path), path.string());
      emit(p, report, [&] { print_stats(report); });
      return 0;
    } else {
      Checkpoint ckpt(path);
      report = inspect_checkpoint(ckpt, o);
    }
    emit(p, report, [&] { print_inspection(report); });
    return 0;
  };
  return v;
}

}  // namespace moeforge
