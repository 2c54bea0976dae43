// moeforge fit-router MODEL OUT (--data D1 D2 ... | --bytes B1 B2 ... | --stats S1 S2 ...): re-fit
// every router of an MoE from one data file per expert; everything else is copied bit for bit.
#include "cli/checkpoint_source.hpp"
#include "cli/data_options.hpp"
#include "cli/plot_output.hpp"
#include "cli/router_options.hpp"
#include "cli/router_plot.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "core/error.hpp"
#include "engine/stats_file.hpp"
#include "merge/fit_router.hpp"

namespace moeforge {
namespace {

ParamTable fit_router_params() {
  using T = ParamType;
  ParamTable writer;  // no --dtype: only the routers change, everything else is copied bit for bit
  for (const auto& w : writer_params())
    if (w.name != "dtype") writer.push_back(w);
  return with(with(with({
      {.name = "model", .type = T::kPath, .help = "MoE checkpoint", .positional = true, .required = true},
      {.name = "output", .type = T::kPath, .help = "directory to write", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "router", .type = T::kChoice, .default_value = "ridge", .help = "how the routers are fitted: ridge (DUME) or logistic regression",
       .choices = {"ridge", "logistic"}},
      {.name = "stats", .type = T::kPathList, .help = "statistics files from `observe --router-gram`, one per expert in expert order (ridge; instead of data)", .greedy = true},
      {.name = "stats-experts", .type = T::kIntList, .help = "the expert each --stats file belongs to (default: file i → expert i; repeat an index for parts)"},
      {.name = "report", .type = T::kPath, .help = "write each MoE layer's top-1 routing accuracy on the data, before and after, as JSON",
       .affects_output = false, .role = PathRole::kOutputFile},
      {.name = "plot", .type = T::kPath, .help = "write an SVG bar chart of each MoE layer's top-1 routing accuracy on the data, before and after",
       .affects_output = false, .role = PathRole::kOutputFile},
  }, router_fit_params()), data_params()), with(writer, output_params()));
}

}  // namespace

Verb fit_router_verb() {
  Verb v;
  v.name = "fit-router";
  v.description = "re-fit the routers of an MoE from one data file per expert (ridge or logistic regression); nothing else changes";
  v.params = fit_router_params();
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    auto model = open_checkpoint(ctx, p.str("model"));
    FitRouterSpec s;
    s.model = model.get();
    s.label = p.str("output");
    s.method = parse_router_method(p.str("router"));
    s.options = router_fit_options(p);
    s.threads = static_cast<int>(p.integer("threads"));
    s.fit = !p.flag("dry-run");
    s.measure_before = (p.has("report") || p.has("plot")) && s.fit;
    for (const auto& path : p.strings("stats")) {
      s.stats.push_back(read_stats(path));
      s.stats_paths.push_back(path);
    }
    for (int64_t e : p.integers("stats-experts")) s.class_of_stats.push_back(static_cast<int>(e));
    if (s.class_of_stats.empty())
      for (size_t i = 0; i < s.stats.size(); ++i) s.class_of_stats.push_back(static_cast<int>(i));
    if (!s.stats.empty() && has_data(p)) throw UsageError("give either --stats or --data/--bytes, not both");
    if (has_data(p)) {
      int64_t vocab = model->has_config() ? model->config().value("vocab_size", int64_t{0}) : 0;
      s.data = load_files(p, "data", "bytes", vocab, model->path());
    }
    FitRouterResult r = plan_fit_router(s);
    if (p.has("report")) {
      std::vector<std::string> sources = s.stats.empty() ? data_paths(s.data) : s.stats_paths;
      r.plan.extra_files[output_path(p.str("report"))] = router_report_json("fit-router", s.method, s.options, sources, r.after, r.before).dump(2) + "\n";
    }
    if (p.has("plot") && s.fit)
      r.plan.extra_files[output_path(p.str("plot"))] =
          router_plot_svg("fit-router " + plot_model_name(p.str("model")) + ": routing accuracy per layer", std::string(router_method_name(s.method)) + " (fitted)",
                          r.after, r.before, static_cast<int>(s.data.size()), plot_metadata(v, p));
    r.plan.provenance = provenance(v, p);
    return write_output(r.plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
