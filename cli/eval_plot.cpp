#include "cli/eval_plot.hpp"

#include <cmath>

#include "plot/bar_chart.hpp"
#include "plot/labels.hpp"

namespace moeforge {

std::string eval_plot_svg(const std::vector<EvalRun>& runs, const std::string& metadata) {
  BarChart chart;
  bool bytes = true;
  for (const auto& run : runs)
    for (const auto& r : run.results) bytes = bytes && r.bits_per_byte().has_value();
  std::vector<std::string> files;
  if (!runs.empty())
    for (size_t i = 0; i + 1 < runs[0].results.size(); ++i) files.push_back(runs[0].results[i].file);
  chart.groups = distinct_path_labels(files);
  if (files.size() > 1) chart.groups.push_back("all files");
  chart.last_group_is_total = files.size() > 1;
  chart.value_label = bytes ? "bits per byte (lower is better)" : "bits per token (lower is better)";
  std::string names;
  for (const auto& run : runs) {
    BarSeries s{run.model, {}};
    for (size_t g = 0; g < chart.groups.size(); ++g) {
      // With one file the last entry (the total) is that file; otherwise files then the total.
      size_t i = files.size() > 1 ? g : 0;
      const EvalResult& r = run.results[std::min(i, run.results.size() - 1)];
      s.values.push_back(bytes ? *r.bits_per_byte() : r.bits_per_token());
    }
    chart.series.push_back(std::move(s));
    names += (names.empty() ? "" : ", ") + run.model;
  }
  chart.title = "eval " + names + ": " + (bytes ? "bits per byte" : "bits per token");
  int64_t predictions = runs.empty() || runs[0].results.empty() ? 0 : runs[0].results.back().predictions;
  chart.subtitle = std::to_string(files.size()) + " data file" + (files.size() == 1 ? "" : "s") + ", " + std::to_string(predictions) +
                   " predicted tokens in all; \u201call files\u201d weighs files by their tokens";
  if (files.size() < 2) chart.subtitle = std::to_string(predictions) + " predicted tokens";
  return render_bar_chart(chart, metadata);
}

}  // namespace moeforge
