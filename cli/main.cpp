// moeforge command line: builds one CLI11 subcommand per verb from its parameter table, parses,
// dispatches, and turns errors into one line on stderr and a distinct exit status.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "core/version.hpp"
#include "cli/verb.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "formats/sharded_writer.hpp"

using namespace moeforge;

namespace {

// Collects the raw text of every option the user gave, for validate_params().
class Binder {
 public:
  Binder(CLI::App* sub, const Verb& verb) : sub_(sub), verb_(verb) {
    for (const auto& p : verb.params) bind(p);
  }
  ParamValues values() const {
    nlohmann::json given = nlohmann::json::object();
    for (const auto& p : verb_.params) {
      CLI::Option* opt = options_.at(p.name);
      if (opt->count() == 0) continue;
      if (p.type == ParamType::kFlag) given[p.name] = true;
      else if (is_list(p)) given[p.name] = lists_.at(p.name);
      else given[p.name] = scalars_.at(p.name);
    }
    return validate_params(verb_.params, given, "");
  }
  const Verb& verb() const { return verb_; }
  CLI::App* app() const { return sub_; }

 private:
  static bool is_list(const ParamSpec& p) { return p.type == ParamType::kPathList; }

  void bind(const ParamSpec& p) {
    std::string help = p.help;
    if (!p.default_value.empty()) help += " [default: " + p.default_value + "]";
    if (!p.choices.empty() && p.type == ParamType::kChoice) help += " {" + [&] {
      std::string s;
      for (const auto& c : p.choices) s += (s.empty() ? "" : ",") + c;
      return s;
    }() + "}";
    std::string flag_name = p.positional ? p.name : "--" + p.name;
    CLI::Option* opt;
    if (p.type == ParamType::kFlag) {
      opt = sub_->add_flag(flag_name)->description(help);
    } else if (is_list(p)) {
      opt = sub_->add_option(flag_name, lists_[p.name], help);
      if (!p.greedy && !p.positional) opt->expected(1)->allow_extra_args(false);
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      opt = sub_->add_option(flag_name, scalars_[p.name], help);
    }
    if (p.required && p.positional) opt->required();
    std::string type = param_type_name(p.type);
    if (!type.empty()) opt->type_name(type);
    options_[p.name] = opt;
  }

  CLI::App* sub_;
  const Verb& verb_;
  std::map<std::string, CLI::Option*> options_;
  std::map<std::string, std::string> scalars_;
  std::map<std::string, std::vector<std::string>> lists_;
};

}  // namespace

int main(int argc, char** argv) {
  install_interrupt_cleanup();
  std::vector<Verb> verbs = all_verbs();
  CLI::App app{"moeforge: build Mixture-of-Experts checkpoints from dense experts and make MoE checkpoints smaller"};
  app.set_version_flag("--version", std::string("moeforge ") + kVersion);
  app.require_subcommand(1);
  std::vector<std::unique_ptr<Binder>> binders;
  for (const auto& v : verbs) binders.push_back(std::make_unique<Binder>(app.add_subcommand(v.name, v.description), v));
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const auto& v : verbs) names.push_back(v.name);
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::fprintf(stderr, "moeforge: error: unknown verb \"%s\" (verbs: %s); hint: moeforge --help\n", argv[1], join(names, ", ").c_str());
      return static_cast<int>(ExitCode::kUsage);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  for (const auto& b : binders) {
    if (!b->app()->parsed()) continue;
    try {
      ParamValues values = b->values();
      set_quiet(values.flag("quiet"));
      return run_verb(b->verb(), values, RunContext{});
    } catch (const Error& e) {
      std::fprintf(stderr, "moeforge %s: error: %s\n", b->verb().name.c_str(), e.what());
      return static_cast<int>(e.code());
    } catch (const std::filesystem::filesystem_error& e) {
      // The file system refused (read-only folder, name too long, symlink loop, a file where a folder is expected).
      std::string path = e.path1().empty() ? std::string("(no path)") : e.path1().string();
      std::fprintf(stderr, "moeforge %s: error: %s: %s\n", b->verb().name.c_str(), path.c_str(), e.code().message().c_str());
      return static_cast<int>(ExitCode::kIo);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "moeforge %s: error: out of memory; hint: fewer --threads, or a machine with more memory\n", b->verb().name.c_str());
      return static_cast<int>(ExitCode::kIo);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "moeforge %s: internal error: %s\n", b->verb().name.c_str(), e.what());
      return static_cast<int>(ExitCode::kInternal);
    }
  }
  return static_cast<int>(ExitCode::kUsage);
}
