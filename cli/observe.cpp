// moeforge observe MODEL --data FILE... --out STATS: calibration statistics for pruning,
// merging and router initialisation.
#include "cli/checkpoint_source.hpp"
#include "cli/data_options.hpp"
#include "cli/plot_output.hpp"
#include "cli/verb.hpp"
#include "cli/report_printers.hpp"
#include "core/error.hpp"
#include "engine/calibration_stats.hpp"
#include "engine/stats_file.hpp"

namespace moeforge {

Verb observe_verb() {
  using T = ParamType;
  Verb v;
  v.name = "observe";
  v.description = "run a model over calibration data and save routing and expert statistics";
  v.params = with(with({{.name = "model", .type = T::kPath, .help = "checkpoint", .positional = true, .required = true},
                        {.name = "out", .type = T::kPath, .help = "statistics file to write (.safetensors)", .required = true, .affects_output = false, .role = PathRole::kOutputFile}},
                       data_params()),
                  with({{.name = "all-experts", .type = T::kFlag, .help = "also run every expert on every token (output similarity statistics; E/k times the FFN work)"},
                        {.name = "plot", .type = T::kPath, .help = "also write an SVG heat map of expert usage per data file", .affects_output = false, .role = PathRole::kOutputFile},
                        {.name = "force", .type = T::kFlag, .help = "replace an existing statistics file", .affects_output = false},
                        threads_param()},
                       output_params()));
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    std::filesystem::path out = output_path(p.str("out"));
    auto owned = open_checkpoint(ctx, p.str("model"));
    const Checkpoint& ckpt = *owned;
    Engine engine(ckpt, {.threads = p.count("threads")});
    DataSet data = load_dataset(p, engine.config().vocab, ckpt.path());
    CalibrationStats stats = observe(engine, data, p.flag("all-experts"));
    OutputTransaction tx(p.flag("force"));
    write_stats(stats, tx, out);
    tx.commit();
    if (p.has("plot")) write_file_output(p, "plot", observe_plot(v, p, stats));
    auto d = describe_stats(stats, out.string());
    emit(p, d, [&] { print_stats(d); });
    return 0;
  };
  return v;
}

}  // namespace moeforge
