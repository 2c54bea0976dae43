#include "core/interrupt.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

namespace moeforge {
namespace {

std::mutex g_mutex;
std::set<std::filesystem::path>& partial_files() {
  static std::set<std::filesystem::path> files;
  return files;
}

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void install_interrupt_cleanup() {
  sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    g_mutex.lock();  // held until exit: no partial file can be created after the cleanup
    std::error_code ec;
    for (const auto& f : partial_files()) std::filesystem::remove(f, ec);
    std::fprintf(stderr, "\nmoeforge: interrupted (signal %d); partial output removed\n", sig);
    _exit(130);
  }).detach();
}

int create_partial(const std::filesystem::path& file) {
  std::lock_guard<std::mutex> lock(g_mutex);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) partial_files().insert(file);
  return fd;
}

void untrack_partial(const std::filesystem::path& file) {
  std::lock_guard<std::mutex> lock(g_mutex);
  partial_files().erase(file);
}

}  // namespace moeforge
