#include "cli/calibration_options.hpp"

#include "cli/data_options.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "engine/engine.hpp"
#include "engine/stats_file.hpp"
#include "engine/stats_merge.hpp"

namespace moeforge {

ParamTable calibration_params() {
  using T = ParamType;
  return with({{.name = "stats", .type = T::kPathList,
                .help = "statistics from `moeforge observe` (instead of --data/--bytes); several files (shards, or other data) are merged",
                .greedy = true}},
              data_params());
}

StatsTensors read_stats_files(const std::vector<std::string>& paths) {
  std::vector<StatsInput> inputs;
  for (const auto& path : paths) inputs.push_back({path, read_stats_tensors(path)});
  MergeOutcome merged = merge_stats(inputs, false);
  for (const auto& line : merged.incomplete) warn("statistics merged with --partial: " + line);
  return std::move(merged.stats);
}

CalibrationStats read_calibration_files(const std::vector<std::string>& paths) {
  return from_tensors(read_stats_files(paths), join(paths, " + "));
}

std::optional<CalibrationStats> load_calibration(const ParamValues& p, const Checkpoint& model, const ModelConfig& config, bool all_outputs) {
  if (p.has("stats") && has_data(p)) throw UsageError("give either --stats or --data/--bytes, not both");
  if (p.has("stats")) {
    auto paths = p.strings("stats");
    CalibrationStats s = read_calibration_files(paths);
    check_stats_match(s, config, join(paths, " + "));
    return s;
  }
  if (!has_data(p)) return std::nullopt;
  Engine engine(model, {.threads = p.count("threads")});
  return observe(engine, load_dataset(p, config.vocab, model.path()),
                 ObserveOptions{.all_outputs = all_outputs, .data_options = window_options_record(p)});
}

}  // namespace moeforge
