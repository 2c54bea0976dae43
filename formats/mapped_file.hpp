// A read-only input file, both memory-mapped (random access, zero copy) and open for pread()
// (streaming: copies straight from the page cache into a caller's buffer, so a pass over a
// file larger than RAM costs no page faults and no resident memory). Inputs are never written.
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace moeforge {

class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Copies [offset, offset+length) into dst with pread(); throws IoError on failure.
  void read(size_t offset, size_t length, std::byte* dst) const;
  // Drops mapped pages of [offset, offset+length) from this process (they stay in the cache).
  void release(size_t offset, size_t length) const;

 private:
  std::string path_;
  int fd_ = -1;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moeforge
