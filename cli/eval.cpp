// moeforge eval MODEL (--data FILE... | --bytes FILE...): NLL, perplexity, bits per token/byte.
#include "cli/checkpoint_source.hpp"
#include "cli/data_options.hpp"
#include "cli/plot_output.hpp"
#include "cli/verb.hpp"
#include "core/error.hpp"
#include "cli/report_printers.hpp"
#include "engine/distributed.hpp"
#include "engine/evaluation.hpp"

namespace moeforge {

Verb eval_verb() {
  using T = ParamType;
  Verb v;
  v.name = "eval";
  v.description = "mean NLL, perplexity and bits per byte of a model on token or byte files";
  v.params = with(with({{.name = "model", .type = T::kPath, .help = "checkpoint", .positional = true, .required = true}}, data_params()),
                  with({{.name = "context", .type = T::kInt, .default_value = "0", .help = "score only the tokens at positions ≥ N of each window, so that every scored token sees at least N tokens before it (the first N are read, not scored)", .min = 0.0},
                        {.name = "windows", .type = T::kFlag, .help = "include every window's mean NLL in --json output"},
                        {.name = "plot", .type = T::kPath, .help = "write an SVG bar chart of bits per byte (or per token) per file", .affects_output = false, .role = PathRole::kOutputFile},
                        {.name = "force", .type = T::kFlag, .help = "replace an existing --plot file", .affects_output = false},
                        threads_param()},
                       output_params()));
  v.run = [v](const ParamValues& p, const RunContext&) {
    auto owned = open_checkpoint(RunContext{}, p.str("model"));
    const Checkpoint& ckpt = *owned;
    Engine engine(ckpt, {.threads = p.count("threads")});
    DataSet data = load_dataset(p, engine.config().vocab, ckpt.path());
    if (p.integer("context") >= p.integer("seq-len"))
      throw UsageError("--context " + std::to_string(p.integer("context")) + " leaves nothing to score in windows of --seq-len " +
                       std::to_string(p.integer("seq-len")) + " tokens; hint: --context below --seq-len");
    auto results = evaluate(engine, data, p.integer("context"));
    auto report = eval_report(results);
    report["model"] = p.str("model");
    report["seq_len"] = p.integer("seq-len");
    report["context"] = p.integer("context");
    if (p.flag("windows"))
      for (size_t i = 0; i < results.size(); ++i) report["files"][i]["window_nll"] = results[i].window_nll;
    if (p.has("plot") && processes().is_root()) write_file_output(p, "plot", eval_plot(v, p, results));  // an MPI job writes once
    emit(p, report, [&] { print_eval(report); });
    return 0;
  };
  return v;
}

}  // namespace moeforge
