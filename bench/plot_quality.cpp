// Draws bench/results-compress-quality.svg from the rows bench/compress_quality.sh collects:
// bits per byte against experts kept, one line per pruning criterion (or merging method), one
// panel per calibration set. Input lines, tab-separated:
//   unpruned  -     -       4  EN PY DE C
//   prune     CAL   CRIT    K  EN PY DE C      (CAL: en, py, de, c or mix)
//   merge     mix   METHOD  K  EN PY DE C
// A panel calibrated on one domain shows that domain's eval text (pruning for a domain); the mix
// panels show the mean over the four.
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/output_safety.hpp"
#include "plot/line_chart.hpp"

using namespace moeforge;

namespace {

const char* kDomains[] = {"en", "py", "de", "c"};

struct Row {
  std::string kind, calibration, series;
  double kept = 0;
  double bpb[4] = {};
};

std::vector<Row> read_rows(const std::string& path) {
  std::vector<Row> rows;
  std::istringstream in(read_regular_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream f(line);
    Row r;
    std::string kept, values;
    std::getline(f, r.kind, '\t');
    std::getline(f, r.calibration, '\t');
    std::getline(f, r.series, '\t');
    std::getline(f, kept, '\t');
    std::getline(f, values);
    std::istringstream v(values);
    r.kept = std::stod(kept);
    for (double& x : r.bpb) v >> x;
    if (!v) throw FormatError(path + ": expected 4 bits-per-byte values in \"" + line + "\"");
    rows.push_back(r);
  }
  return rows;
}

double shown(const Row& r, const std::string& calibration) {
  for (int d = 0; d < 4; ++d)
    if (calibration == kDomains[d]) return r.bpb[d];
  return (r.bpb[0] + r.bpb[1] + r.bpb[2] + r.bpb[3]) / 4;
}

// One panel: every series of `kind` calibrated on `calibration`, starting from the unpruned model.
LinePanel panel(const std::vector<Row>& rows, const Row& unpruned, const std::string& kind, const std::string& calibration,
                const std::string& title) {
  LinePanel p{title, {}};
  std::map<std::string, size_t> index;
  for (const auto& r : rows) {
    if (r.kind != kind || r.calibration != calibration) continue;
    auto [it, fresh] = index.try_emplace(r.series, p.series.size());
    if (fresh) p.series.push_back({r.series, {unpruned.kept}, {shown(unpruned, calibration)}});
    p.series[it->second].x.push_back(r.kept);
    p.series[it->second].y.push_back(shown(r, calibration));
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ROWS.tsv OUT.svg\n", argv[0]);
    return 2;
  }
  try {
    std::vector<Row> rows = read_rows(argv[1]);
    const Row* unpruned = nullptr;
    for (const auto& r : rows)
      if (r.kind == "unpruned") unpruned = &r;
    if (unpruned == nullptr) throw FormatError(std::string(argv[1]) + ": no \"unpruned\" row");
    LineChart chart{.title = "Pruning and merging the btx-bytes MoE: bits per byte against experts kept",
                    .subtitle = "4 domain experts, top-2; calibrated on one domain: bits per byte on that domain\u2019s eval text; "
                                "on the mix: mean over en, py, de and c",
                    .x_label = "experts kept (of 4)", .y_label = "bits per byte (lower is better)", .x_ticks = {4, 3, 2}, .x_descending = true, .dodge = 3};
    for (const char* d : kDomains) chart.panels.push_back(panel(rows, *unpruned, "prune", d, std::string("prune, calibrated on ") + d));
    chart.panels.push_back(panel(rows, *unpruned, "prune", "mix", "prune, calibrated on the mix"));
    chart.panels.push_back(panel(rows, *unpruned, "merge", "mix", "merge, calibrated on the mix"));
    chart.footnotes = {"Series are drawn side by side at each count: criteria that keep the same experts show equal heights.",
                       "prune-reap in the merge panel: REAP pruning to the same count, for comparison."};
    write_file_atomically(argv[2], render_line_chart(chart, std::string("{\"command\": \"bench/compress_quality.sh\"}")), true);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return static_cast<int>(e.code());
  }
  return 0;
}
