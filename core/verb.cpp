#include "core/verb.hpp"

#include "core/log.hpp"
#include "core/parallel.hpp"

namespace moeforge {

std::vector<std::string> paths_of(const Verb& verb, const ParamValues& values, PathRole role) {
  std::vector<std::string> out;
  for (const auto& p : verb.params) {
    if (p.role != role || !values.has(p.name)) continue;
    if (p.type == ParamType::kPath) out.push_back(values.str(p.name));
    if (p.type == ParamType::kPathList)
      for (const auto& s : values.strings(p.name)) out.push_back(s);
  }
  return out;
}

OutputPaths output_paths(const Verb& verb, const ParamValues& values) {
  OutputPaths paths;
  for (const auto& s : paths_of(verb, values, PathRole::kInput)) paths.inputs.push_back(s);
  for (const auto& s : paths_of(verb, values, PathRole::kOutputDir))
    (writes_single_file(values, s) ? paths.files : paths.directories).push_back(output_path(s));
  for (const auto& s : paths_of(verb, values, PathRole::kOutputFile)) paths.files.push_back(output_path(s));
  return paths;
}

bool writes_single_file(const ParamValues& values, const std::string& output) {
  if (values.has("format")) return values.str("format") == "gguf";
  std::string o = output_path(output).string();
  return o.size() > 5 && o.compare(o.size() - 5, 5, ".gguf") == 0;
}

int run_verb(const Verb& verb, ParamValues values, const RunContext& ctx) {
  if (values.has("threads")) {
    int64_t requested = values.integer("threads");
    if (requested > default_threads())
      warn("--threads " + std::to_string(requested) + " is more than the " + std::to_string(default_threads()) + " cores; using " +
           std::to_string(default_threads()));
    values.set("threads", resolve_threads(requested));
  }
  // The output rules hold for dry runs too: a dry run that would be refused fails the same way.
  check_outputs(output_paths(verb, values), values.flag("force"));
  return verb.run(values, ctx);
}

void write_file_output(const ParamValues& values, const std::string& option, const std::string& bytes) {
  if (values.flag("dry-run")) return;
  write_file_atomically(output_path(values.str(option)), bytes, values.flag("force"));
}

}  // namespace moeforge
