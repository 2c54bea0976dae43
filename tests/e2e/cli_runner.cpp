#include "tests/e2e/cli_runner.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>

#include "tests/test_support.hpp"

namespace moeforge::test {

int RunResult::err_lines() const { return static_cast<int>(std::count(err.begin(), err.end(), '\n')); }

std::string source_dir() { return MOEFORGE_SOURCE_DIR; }

namespace {

[[noreturn]] void exec_program(const std::string& program, const std::vector<std::string>& args, const std::vector<std::string>& env) {
  for (const auto& e : env) putenv(strdup(e.c_str()));
  std::vector<char*> argv;
  std::string bin = program;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  execvp(bin.c_str(), argv.data());
  _exit(127);
}

}  // namespace

int spawn_moeforge(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    exec_program(MOEFORGE_BINARY, args, env);
  }
  return pid;
}

RunResult run_moeforge(const std::vector<std::string>& args, int timeout_seconds, const std::vector<std::string>& env) {
  return run_program(MOEFORGE_BINARY, args, timeout_seconds, env);
}

RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_seconds,
                      const std::vector<std::string>& env) {
  ScratchDir io("io");
  std::string out_path = (io / "out").string(), err_path = (io / "err").string();
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    exec_program(program, args, env);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    usleep(2000);
  }
  RunResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

}  // namespace moeforge::test
