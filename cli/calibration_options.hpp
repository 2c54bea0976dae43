// Where pruning and merging get their statistics: a --stats file (checked against the model) or
// --data/--bytes, observed on the spot.
#pragma once
#include <optional>

#include "core/params.hpp"
#include "engine/calibration_stats.hpp"
#include "model/model_config.hpp"

namespace moeforge {

ParamTable calibration_params();
// Null when neither --stats nor data was given; `all_outputs` asks observe for every-expert outputs.
std::optional<CalibrationStats> load_calibration(const ParamValues& p, const Checkpoint& model, const ModelConfig& config, bool all_outputs);

}  // namespace moeforge
