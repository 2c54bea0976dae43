#include "core/log.hpp"

#include <unistd.h>

#include <cstdio>

#include "core/strings.hpp"

namespace moeforge {
namespace {
std::atomic<bool> g_quiet{false};
}

void set_quiet(bool quiet) { g_quiet = quiet; }
bool is_quiet() { return g_quiet; }

void warn(const std::string& message) {
  if (!g_quiet) std::fprintf(stderr, "moeforge: warning: %s\n", message.c_str());
}

void note(const std::string& message) {
  if (!g_quiet) std::fprintf(stderr, "moeforge: %s\n", message.c_str());
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(!g_quiet && ::isatty(2) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (enabled_) draw(true);
}

void Progress::add(uint64_t amount) {
  done_ += amount;
  if (!enabled_) return;
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::draw(bool final) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_;
  double pct = total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::fprintf(stderr, "\r%s %5.1f%%  %s / %s  %s/s   ", label_.c_str(), pct, format_bytes(done).c_str(),
               format_bytes(total_).c_str(), format_bytes(static_cast<uint64_t>(rate)).c_str());
  if (final) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace moeforge
