// What every --plot of the command line shares: the SVG's <metadata> (the command that made the
// plot, as it would be typed, and the provenance of the output), so a figure can be traced back
// to its run even when its title names only the model.
#pragma once
#include <string>

#include "core/verb.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/evaluation.hpp"

namespace moeforge {

// "moeforge prune MODEL OUT --stats s.safetensors --keep 2 …": positional arguments in table
// order, then every option that shapes an output and differs from its default, and the outputs.
std::string command_text(const Verb& verb, const ParamValues& values);
// A model's name for a plot title: the last component of its path, at most 60 characters.
std::string plot_model_name(const std::string& path);
// JSON text {"command": …, "provenance": …} for the SVG's <metadata>.
std::string plot_metadata(const Verb& verb, const ParamValues& values);

// The SVG of `observe --plot` (compress/usage_plot.hpp) and `eval --plot` (cli/eval_plot.hpp).
std::string observe_plot(const Verb& verb, const ParamValues& values, const CalibrationStats& stats);
std::string eval_plot(const Verb& verb, const ParamValues& values, const std::vector<EvalResult>& results);

}  // namespace moeforge
