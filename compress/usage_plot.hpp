// `observe --plot`: which experts serve which data. One heat map panel per data file (layers ×
// experts, colour = share of the file's tokens routed to the expert, uniform use marked on the
// scale) and, with several files, a first panel in which each expert takes the colour of the
// file that uses it most, pale when every file uses it alike. Drawn by plot/heat_map.
#pragma once
#include <string>

#include "engine/calibration_stats.hpp"

namespace moeforge {

// Cell tooltips: "layer L · expert E · FILE · share of tokens S (C of T)" in the file panels,
// "layer L · expert E · most used by FILE (S of its use)" in the comparison panel.
std::string usage_heat_map_svg(const CalibrationStats& stats, const std::string& model_name, const std::string& metadata);

}  // namespace moeforge
