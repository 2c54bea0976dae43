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

RunResult run_moeforge(const std::vector<std::string>& args);
// Any program (found on PATH when `argv[0]` has no slash), e.g. mpirun.
RunResult run_program(const std::vector<std::string>& argv);
std::string source_dir();

}  // namespace moeforge::test
