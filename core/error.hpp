// Errors: one root type, one subtype per exit code. Every message names the file, the tensor,
// what was expected and what was found, plus a hint; cli/ prints it on one line.
#pragma once
#include <stdexcept>
#include <string>

namespace moeforge {

enum class ExitCode : int {
  kOk = 0,
  kDifferent = 1,      // diff: inputs differ
  kUsage = 2,          // bad command line or recipe
  kFormat = 3,         // malformed input file
  kMismatch = 4,       // inputs that do not fit together
  kUnsupported = 5,    // valid input we cannot handle (architecture, dtype)
  kIo = 6,             // file system trouble
  kInternal = 70,
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ExitCode::kUsage, m) {}
};
struct FormatError : Error {
  explicit FormatError(const std::string& m) : Error(ExitCode::kFormat, m) {}
};
struct MismatchError : Error {
  explicit MismatchError(const std::string& m) : Error(ExitCode::kMismatch, m) {}
};
struct UnsupportedError : Error {
  explicit UnsupportedError(const std::string& m) : Error(ExitCode::kUnsupported, m) {}
};
struct IoError : Error {
  explicit IoError(const std::string& m) : Error(ExitCode::kIo, m) {}
};

// A dry run's planned checkpoint has names and shapes but no data: planning a step that must read
// the weights an earlier step would write throws this (the recipe runner then stops planning).
struct NoDataYet : UsageError {
  explicit NoDataYet(const std::string& m) : UsageError(m) {}
};

// "FILE: tensor 'T': WHAT" — the common prefix of messages about one tensor.
inline std::string where(const std::string& file, const std::string& tensor = {}) {
  return tensor.empty() ? file + ": " : file + ": tensor '" + tensor + "': ";
}

}  // namespace moeforge
