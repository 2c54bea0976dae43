// Runs the built moeforge binary for end-to-end tests and captures status, stdout and stderr.
#pragma once
#include <string>
#include <vector>

namespace moeforge::test {

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
  int err_lines() const;
};

// Runs the binary; a run longer than timeout_seconds is killed (status 128 + 9) so a hang fails
// the test instead of stalling it. `env` adds NAME=VALUE entries to the environment.
RunResult run_moeforge(const std::vector<std::string>& args, int timeout_seconds = 600, const std::vector<std::string>& env = {});
// Starts the binary without waiting; returns its pid.
int spawn_moeforge(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
// Any program (found on PATH when `program` has no slash), with the same timeout and environment.
RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_seconds = 600,
                      const std::vector<std::string>& env = {});
std::string source_dir();

}  // namespace moeforge::test
