// Where pruning, merging and router fitting get their statistics: --stats FILE... (one file, or
// several — shards of one calibration or calibrations of different data — merged on the fly by
// the rules of `moeforge stats merge`, checked against the model) or --data/--bytes, observed on
// the spot (split across the ranks of an MPI job).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/stats_tensors.hpp"
#include "model/model_config.hpp"

namespace moeforge {

ParamTable calibration_params();
// Null when neither --stats nor data was given; `all_outputs` asks observe for every-expert outputs.
std::optional<CalibrationStats> load_calibration(const ParamValues& p, const Checkpoint& model, const ModelConfig& config, bool all_outputs);

// Reads and merges statistics files (complete coverage required; files already merged with
// --partial are accepted with a warning). The raw form keeps tensors moeforge does not interpret.
StatsTensors read_stats_files(const std::vector<std::string>& paths);
CalibrationStats read_calibration_files(const std::vector<std::string>& paths);

}  // namespace moeforge
