// moeforge stats merge S1 S2 ... --out S: combine statistics files — the shards of one
// calibration (observe --shard K/N, on any number of machines) or calibrations of other data.
#include "cli/calibration_options.hpp"
#include "cli/report_printers.hpp"
#include "cli/verb.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "engine/stats_file.hpp"
#include "engine/stats_merge.hpp"

namespace moeforge {

Verb stats_verb() {
  using T = ParamType;
  Verb v;
  v.name = "stats";
  v.description = "calibration statistics files: `stats merge S1 S2 ... --out S` combines shards or calibrations of different data";
  v.params = with({
      {.name = "action", .type = T::kChoice, .help = "what to do", .choices = {"merge"}, .positional = true, .required = true},
      {.name = "inputs", .type = T::kPathList, .help = "statistics files from `moeforge observe` (or earlier merges)", .positional = true, .required = true},
      {.name = "out", .type = T::kPath, .help = "merged statistics file to write (.safetensors)", .required = true, .affects_output = false,
       .role = PathRole::kOutputFile},
      {.name = "partial", .type = T::kFlag, .help = "accept missing shards (the result records which windows it covers)"},
      {.name = "force", .type = T::kFlag, .help = "replace an existing statistics file", .affects_output = false},
  }, output_params());
  v.run = [](const ParamValues& p, const RunContext&) {
    std::filesystem::path out = output_path(p.str("out"));
    std::vector<StatsInput> inputs;
    for (const auto& path : p.strings("inputs")) inputs.push_back({path, read_stats_tensors(path)});
    MergeOutcome merged = merge_stats(inputs, p.flag("partial"));
    for (const auto& line : merged.incomplete) warn("partial merge: " + line);
    CalibrationStats stats = from_tensors(merged.stats, out.string());  // checks the result reads back
    OutputTransaction tx(p.flag("force"));
    write_stats(merged.stats, tx, out);
    tx.commit();
    auto d = describe_stats(stats, out.string());
    d["inputs"] = p.strings("inputs");
    emit(p, d, [&] { print_stats(d); });
    return 0;
  };
  return v;
}

}  // namespace moeforge
