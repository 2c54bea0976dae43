// A read-only memory map of a whole file. Inputs are mapped, never written.
// release() drops already-consumed pages from this process (they stay in the page cache), so
// streaming through a file larger than RAM keeps the resident set small.
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
  // Hint that [offset, offset+length) will be read soon / is no longer needed by this process.
  void prefetch(size_t offset, size_t length) const;
  void release(size_t offset, size_t length) const;

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moeforge
