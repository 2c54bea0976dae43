#include "formats/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/file_io.hpp"

namespace moeforge {
namespace {

size_t page_size() {
  static const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return kPage;
}

// The whole pages inside [offset, offset+length), so advice never touches a neighbour's bytes.
bool inner_pages(size_t offset, size_t length, size_t size, size_t* begin, size_t* end) {
  size_t p = page_size();
  size_t last = std::min(offset + length, size);
  *begin = (offset + p - 1) / p * p;
  *end = last / p * p;
  return *end > *begin;
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path.string()) {
  int fd = open_regular_file(path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw IoError(path_ + ": cannot stat: " + std::strerror(e));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw IoError(path_ + ": cannot map " + std::to_string(size_) + " bytes: " + std::strerror(e));
    }
    data_ = static_cast<const std::byte*>(p);
  }
  fd_ = fd;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::read(size_t offset, size_t length, std::byte* dst) const {
  if (offset > size_ || length > size_ - offset)
    throw IoError(path_ + ": read of " + std::to_string(length) + " bytes at " + std::to_string(offset) + " past the end");
  while (length > 0) {
    ssize_t got = ::pread(fd_, dst, length, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw IoError(path_ + ": read failed at byte " + std::to_string(offset) + ": " + (got == 0 ? std::string("file shrank") : std::strerror(errno)));
    dst += got;
    offset += static_cast<size_t>(got);
    length -= static_cast<size_t>(got);
  }
}

void MappedFile::release(size_t offset, size_t length) const {
  size_t begin = 0, end = 0;
  if (data_ == nullptr || !inner_pages(offset, length, size_, &begin, &end)) return;
  ::madvise(const_cast<std::byte*>(data_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace moeforge
