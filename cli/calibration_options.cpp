#include "cli/calibration_options.hpp"

#include "cli/data_options.hpp"
#include "core/error.hpp"
#include "engine/engine.hpp"
#include "engine/stats_file.hpp"

namespace moeforge {

ParamTable calibration_params() {
  using T = ParamType;
  return with({{.name = "stats", .type = T::kPath, .help = "statistics from `moeforge observe` (instead of --data/--bytes)"}}, data_params());
}

std::optional<CalibrationStats> load_calibration(const ParamValues& p, const Checkpoint& model, const ModelConfig& config, bool all_outputs) {
  if (p.has("stats") && has_data(p)) throw UsageError("give either --stats or --data/--bytes, not both");
  if (p.has("stats")) {
    CalibrationStats s = read_stats(p.str("stats"));
    check_stats_match(s, config, p.str("stats"));
    return s;
  }
  if (!has_data(p)) return std::nullopt;
  Engine engine(model, {.threads = p.count("threads")});
  return observe(engine, load_dataset(p, config.vocab, model.path()), all_outputs);
}

}  // namespace moeforge
