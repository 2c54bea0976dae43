// moeforge prune MODEL OUT (--stats STATS | --data FILE...) (--ratio R | --keep N): drop the experts
// a domain does not need.
#include "cli/calibration_options.hpp"
#include "cli/checkpoint_source.hpp"
#include "cli/plot_output.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "compress/prune.hpp"
#include "core/error.hpp"
#include "model/inspection.hpp"

namespace moeforge {

namespace {

ParamTable prune_params() {
  using T = ParamType;
  return {
      {.name = "model", .type = T::kPath, .help = "MoE checkpoint", .positional = true, .required = true},
      {.name = "output", .type = T::kPath, .help = "directory to write, or a .gguf file", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "ratio", .type = T::kFloat, .help = "fraction of each layer's experts to drop (rounded down), in (0, 1)",
       .min = 0.0, .max = 1.0, .min_exclusive = true, .max_exclusive = true},
      {.name = "keep", .type = T::kInt, .help = "experts to keep per layer", .min = 1.0},
      {.name = "criterion", .type = T::kChoice, .default_value = "reap", .help = "how experts are scored",
       .choices = {"reap", "frequency", "weighted-frequency", "ean", "ean-mean", "easy-ep", "random"}},
      {.name = "global", .type = T::kFlag, .help = "one ranking across layers (each keeps at least experts-per-token)"},
      {.name = "protect", .type = T::kPath, .help = "JSON {\"layer\": [experts]} never dropped"},
      {.name = "keep-list", .type = T::kPath, .help = "JSON {\"layer\": [experts]} to keep (no statistics needed)"},
      {.name = "drop-list", .type = T::kPath, .help = "JSON {\"layer\": [experts]} to drop (no statistics needed)"},
      {.name = "protect-super-experts", .type = T::kFlag, .help = "never drop experts whose max activation exceeds max(99.5th percentile, max / 10)"},
      {.name = "seed", .type = T::kInt, .default_value = "0", .help = "seed of --criterion random", .min = 0.0},
      {.name = "report", .type = T::kPath, .help = "write scores and decisions as JSON", .affects_output = false, .role = PathRole::kOutputFile},
      {.name = "plot", .type = T::kPath, .help = "write an SVG heat map of scores and decisions", .affects_output = false, .role = PathRole::kOutputFile},
  };
}

}  // namespace

Verb prune_verb() {
  Verb v;
  v.name = "prune";
  v.description = "drop experts a domain does not need (REAP and baseline criteria, or manual lists)";
  v.params = with(with(with(prune_params(), calibration_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    auto owned = open_checkpoint(ctx, p.str("model"));
    const Checkpoint& model = *owned;
    if (!model.has_config()) throw FormatError(model.label() + ": no config.json");
    ModelConfig config = resolve_config(model.config(), model.config_path().string());
    require_consistent_structure(model, config);
    if (!config.is_moe()) throw UnsupportedError(model.label() + ": a dense " + std::string(config.family->model_type) + " model has no experts to prune");
    SelectionOptions o;
    if (p.has("ratio")) o.ratio = p.number("ratio");
    if (p.has("keep")) o.keep = p.count("keep");
    if (o.ratio && o.keep) throw UsageError("give either --ratio or --keep");
    o.global = p.flag("global");
    o.protect_super_experts = p.flag("protect-super-experts");
    if (p.has("protect")) o.protect = read_layer_experts(p.str("protect"), config);
    if (p.has("keep-list")) o.keep_list = read_layer_experts(p.str("keep-list"), config);
    if (p.has("drop-list")) o.drop_list = read_layer_experts(p.str("drop-list"), config);
    bool manual = !o.keep_list.empty() || !o.drop_list.empty();
    if (manual && (o.ratio || o.keep)) throw UsageError("--keep-list/--drop-list decide alone; drop --ratio/--keep");
    if (o.keep && *o.keep > config.n_experts)
      throw UsageError("--keep " + std::to_string(*o.keep) + " exceeds the " + std::to_string(config.n_experts) + " experts per layer");
    Criterion criterion = parse_criterion(p.str("criterion"));
    bool need_stats = (!manual && criterion != Criterion::kRandom) || o.protect_super_experts;
    std::optional<CalibrationStats> stats = load_calibration(p, model, config, false);
    if (need_stats && !stats)
      throw UsageError(std::string("--criterion ") + criterion_name(criterion) + " needs calibration statistics: pass --stats FILE or --data/--bytes FILE...");
    std::optional<FileStats> merged;
    if (stats) merged = stats->merged();
    std::optional<Scores> scores;
    if (!manual || stats) scores = score_experts(criterion, merged ? &*merged : nullptr, config, static_cast<uint64_t>(p.integer("seed")));
    Selection sel = select_experts(config, scores ? &*scores : nullptr, merged ? &*merged : nullptr, o);
    PruneResult r = plan_prune(model, config, sel, scores ? &*scores : nullptr, requested_dtype(p));
    std::string method = manual ? "manual list" : criterion_name(criterion);
    if (p.has("report")) r.plan.extra_files[output_path(p.str("report"))] = expert_report_json("prune", method, r.cells).dump(2) + "\n";
    if (p.has("plot"))
      r.plan.extra_files[output_path(p.str("plot"))] = expert_heat_map_svg(
          {.verb = "prune", .model = plot_model_name(model.label()), .method = method, .criterion = scores ? criterion_name(criterion) : "",
           .criterion_meaning = scores ? criterion_meaning(criterion) : "", .global_scale = o.global, .metadata = plot_metadata(v, p)},
          r.cells);
    r.plan.provenance = provenance(v, p);
    return write_output(r.plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
