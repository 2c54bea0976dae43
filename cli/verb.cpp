#include "core/version.hpp"
#include "cli/verb.hpp"

#include <cstdio>

#include "formats/sharded_writer.hpp"

namespace moeforge {

ParamTable output_params() {
  using T = ParamType;
  return {
      {.name = "json", .type = T::kFlag, .help = "machine-readable output on stdout", .affects_output = false},
      {.name = "quiet", .type = T::kFlag, .help = "no progress or warnings on stderr", .affects_output = false},
  };
}

nlohmann::json provenance(const Verb& verb, const ParamValues& values) {
  nlohmann::json inputs = paths_of(verb, values, PathRole::kInput);
  return {{"tool", std::string("moeforge ") + kVersion}, {"verb", verb.name}, {"inputs", inputs},
          {"options", values.output_relevant(verb.params)}};
}

void emit(const ParamValues& values, const nlohmann::ordered_json& report, const std::function<void()>& human) {
  // Replace invalid UTF-8 (GGUF strings are raw bytes) rather than fail the whole report.
  if (values.flag("json")) std::printf("%s\n", report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  else human();
}

}  // namespace moeforge

namespace moeforge {

std::vector<Verb> all_verbs() {
  std::vector<Verb> verbs = {inspect_verb(), diff_verb(),    convert_verb(), eval_verb(),  observe_verb(),
                             compose_verb(), upcycle_verb(), prune_verb(),   merge_experts_verb(), merge_verb(), tokenize_verb()};
  verbs.push_back(run_verb(verbs));
  return verbs;
}

}  // namespace moeforge
