// Human messages on stderr: warnings and notes (silenced by --quiet), and a progress line that
// only appears when stderr is a terminal.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace moeforge {

void set_quiet(bool quiet);
bool is_quiet();
void warn(const std::string& message);  // "moeforge: warning: ..."
void note(const std::string& message);  // "moeforge: ..."

class Progress {
 public:
  Progress(std::string label, uint64_t total);
  ~Progress();
  void add(uint64_t amount);  // thread-safe

 private:
  void draw(bool final);
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace moeforge
