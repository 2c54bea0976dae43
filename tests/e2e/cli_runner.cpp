#include "tests/e2e/cli_runner.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "tests/test_support.hpp"

namespace moeforge::test {

int RunResult::err_lines() const { return static_cast<int>(std::count(err.begin(), err.end(), '\n')); }

std::string source_dir() { return MOEFORGE_SOURCE_DIR; }

RunResult run_moeforge(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {MOEFORGE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

RunResult run_program(const std::vector<std::string>& args) {
  ScratchDir io("io");
  std::string out_path = (io / "out").string(), err_path = (io / "err").string();
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(copy[0].c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  RunResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

}  // namespace moeforge::test
