#include "core/interrupt.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

namespace moeforge {
namespace {

std::recursive_mutex g_mutex;  // recursive: a commit untracks inside without_interruption; guards the registries; the cleanup holds it until _exit
int g_pipe[2] = {-1, -1};

std::set<std::filesystem::path>& partial_files() {
  static std::set<std::filesystem::path> files;
  return files;
}
std::set<std::filesystem::path>& temporary_dirs() {
  static std::set<std::filesystem::path> dirs;
  return dirs;
}

// Async-signal-safe: only write(2). Runs on whichever thread received the signal.
void on_signal(int sig) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_pipe[1], &b, 1);
  errno = saved;
}

void watch() {
  unsigned char sig = 0;
  while (::read(g_pipe[0], &sig, 1) != 1) {
    if (errno != EINTR) return;
  }
  g_mutex.lock();  // held until exit: nothing new is created or committed after the cleanup
  std::error_code ec;
  for (const auto& f : partial_files()) std::filesystem::remove(f, ec);
  for (const auto& d : temporary_dirs()) std::filesystem::remove_all(d, ec);
  std::fprintf(stderr, "\nmoeforge: interrupted (signal %d); partial output removed\n", sig);
  _exit(130);
}

}  // namespace

void install_interrupt_cleanup() {
  if (::pipe2(g_pipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  // Threads started before main may have these blocked or not; the handler is process-wide, so
  // it runs wherever the kernel delivers. Unblock them here in case the parent blocked them.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  std::thread(watch).detach();
}

int create_partial(const std::filesystem::path& file) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) partial_files().insert(file);
  return fd;
}

void untrack_partial(const std::filesystem::path& file) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  partial_files().erase(file);
}

void track_temporary_directory(const std::filesystem::path& dir) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  temporary_dirs().insert(dir);
}

void untrack_temporary_directory(const std::filesystem::path& dir) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  temporary_dirs().erase(dir);
}

void without_interruption(const std::function<void()>& fn) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  fn();
}

}  // namespace moeforge
