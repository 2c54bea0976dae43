#include "core/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.hpp"

namespace moeforge {

void require_regular_file(const std::filesystem::path& path) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) throw IoError(path.string() + ": no such file");
  if (std::filesystem::is_directory(st)) throw IoError(path.string() + ": is a directory, expected a file");
  if (!std::filesystem::is_regular_file(st)) throw IoError(path.string() + ": is not a regular file (a FIFO, socket or device); refused");
}

int open_regular_file(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw IoError(path.string() + ": cannot open: " + std::strerror(e) + (e == ENOENT ? "" : "; hint: check the path and its permissions"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    throw IoError(path.string() + (dir ? ": is a directory, expected a file" : ": is not a regular file (a FIFO, socket or device); refused"));
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string read_regular_file(const std::filesystem::path& path) { return read_file_prefix(path, SIZE_MAX); }

std::string read_file_prefix(const std::filesystem::path& path, size_t max_bytes) {
  int fd = open_regular_file(path);
  std::string out;
  char buf[1 << 16];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max_bytes - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw IoError(path.string() + ": read failed: " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

uint64_t free_bytes_at(const std::filesystem::path& path) {
  std::filesystem::path probe = std::filesystem::absolute(path);
  std::error_code ec;
  while (probe.has_parent_path() && probe != probe.parent_path() && !std::filesystem::exists(probe, ec)) probe = probe.parent_path();
  struct statvfs st {};
  if (::statvfs(probe.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& label) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw IoError(label + ": write failed: " + std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

}  // namespace moeforge
