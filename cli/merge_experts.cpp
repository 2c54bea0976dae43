// moeforge merge-experts MODEL OUT (--stats STATS | --data FILE...) (--groups N | --ratio R):
// merge groups of experts into one expert each.
#include <cmath>

#include "cli/calibration_options.hpp"
#include "cli/checkpoint_source.hpp"
#include "cli/plot_output.hpp"
#include "cli/verb.hpp"
#include "cli/write_output.hpp"
#include "compress/expert_merge.hpp"
#include "core/error.hpp"
#include "model/inspection.hpp"

namespace moeforge {

namespace {

ParamTable merge_params() {
  using T = ParamType;
  return {
      {.name = "model", .type = T::kPath, .help = "MoE checkpoint", .positional = true, .required = true},
      {.name = "output", .type = T::kPath, .help = "directory to write, or a .gguf file", .positional = true, .required = true, .affects_output = false, .role = PathRole::kOutputDir},
      {.name = "method", .type = T::kChoice, .default_value = "sub-moe", .help = "grouping and merging method",
       .choices = {"sub-moe", "msmoe", "hcsmoe", "average"}},
      {.name = "groups", .type = T::kInt, .help = "merged experts per layer", .min = 1.0},
      {.name = "ratio", .type = T::kFloat, .help = "fraction of experts to remove per layer (rounded down), in (0, 1)",
       .min = 0.0, .max = 1.0, .min_exclusive = true, .max_exclusive = true},
      {.name = "rank", .type = T::kInt, .help = "sub-moe: keep this many singular directions per projection (default: full rank)", .min = 1.0},
      {.name = "energy", .type = T::kFloat, .help = "sub-moe: keep the fewest directions holding this fraction of σ² (e.g. 0.95)",
       .min = 0.0, .max = 1.0, .min_exclusive = true},
      {.name = "groups-file", .type = T::kPath, .help = "JSON {\"layer\": [[experts], ...]} fixing the groups (any method)"},
      {.name = "uniform-weights", .type = T::kFlag, .help = "equal weights instead of routing frequencies (no statistics needed with --groups-file)"},
      {.name = "no-permute", .type = T::kFlag, .help = "msmoe: skip the neuron alignment"},
      {.name = "seed", .type = T::kInt, .default_value = "0", .help = "seed of the K-means initialisation", .min = 0.0},
      {.name = "report", .type = T::kPath, .help = "write the groups as JSON", .affects_output = false, .role = PathRole::kOutputFile},
      {.name = "plot", .type = T::kPath, .help = "write an SVG heat map of the groups", .affects_output = false, .role = PathRole::kOutputFile},
  };
}

}  // namespace

Verb merge_experts_verb() {
  Verb v;
  v.name = "merge-experts";
  v.description = "merge groups of experts (Sub-MoE subspace merging, M-SMoE, HC-SMoE, plain average)";
  v.params = with(with(with(merge_params(), calibration_params()), writer_params()), output_params());
  v.run = [v](const ParamValues& p, const RunContext& ctx) {
    auto owned = open_checkpoint(ctx, p.str("model"));
    const Checkpoint& model = *owned;
    if (!model.has_config()) throw FormatError(model.label() + ": no config.json");
    ModelConfig config = resolve_config(model.config(), model.config_path().string());
    require_consistent_structure(model, config);
    if (!config.is_moe()) throw UnsupportedError(model.label() + ": a dense model has no experts to merge");
    MergeSpec s;
    s.model = &model;
    s.config = &config;
    s.method = parse_merge_method(p.str("method"));
    if (p.has("groups") && p.has("ratio")) throw UsageError("give either --groups or --ratio");
    if (p.has("groups")) s.groups = p.count("groups");
    if (p.has("ratio")) s.groups = std::max(1, config.n_experts - static_cast<int>(std::floor(config.n_experts * p.number("ratio"))));
    if (p.has("groups-file")) s.fixed = read_groups_file(p.str("groups-file"), config);
    if (s.groups == 0 && s.fixed.empty()) throw UsageError("say how many experts to keep: --groups N, --ratio R or --groups-file");
    if (p.has("rank") && p.has("energy")) throw UsageError("give either --rank or --energy");
    if ((p.has("rank") || p.has("energy")) && s.method != MergeMethod::kSubMoe) throw UsageError("--rank and --energy apply to --method sub-moe");
    if (p.has("rank")) s.rank.rank = p.count("rank");
    if (p.has("energy")) s.rank.energy = p.number("energy");
    s.uniform_weights = p.flag("uniform-weights");
    s.permute = !p.flag("no-permute");
    s.seed = static_cast<uint64_t>(p.integer("seed"));
    s.dtype = requested_dtype(p);
    bool features = s.method == MergeMethod::kSubMoe || s.method == MergeMethod::kHcsmoe;
    std::optional<CalibrationStats> stats = load_calibration(p, model, config, features);
    std::optional<FileStats> merged;
    if (stats) {
      merged = stats->merged();
      s.stats = &*merged;
    }
    MergeResult r = plan_merge_experts(s);
    if (p.has("report")) {
      auto j = expert_report_json("merge-experts", p.str("method"), r.cells);
      j["groups"] = r.groups;
      r.plan.extra_files[output_path(p.str("report"))] = j.dump(2) + "\n";
    }
    if (p.has("plot")) {
      std::string method = p.str("method") + (p.has("groups-file") ? ", groups from a file" : "");
      r.plan.extra_files[output_path(p.str("plot"))] =
          expert_heat_map_svg({.verb = "merge-experts", .model = plot_model_name(model.label()), .method = method, .merging = true, .metadata = plot_metadata(v, p)},
                              r.cells);
    }
    r.plan.provenance = provenance(v, p);
    return write_output(r.plan, p, ctx);
  };
  return v;
}

}  // namespace moeforge
