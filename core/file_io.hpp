// Reading and writing files without surprises: inputs must be regular files (a FIFO or device
// would block or never end, so it is refused before anything reads it), reads and writes loop
// over short counts and EINTR, and every failure is an IoError naming the path.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace moeforge {

// Throws IoError unless path names a regular file: "no such file", "is a directory", or "is not a
// regular file (a FIFO, socket or device)".
void require_regular_file(const std::filesystem::path& path);
// A read-only descriptor of a regular file (symlinks to one are fine); IoError otherwise.
int open_regular_file(const std::filesystem::path& path);
// The whole file.
std::string read_regular_file(const std::filesystem::path& path);
// At most the first max_bytes (fewer at the end of the file).
std::string read_file_prefix(const std::filesystem::path& path, size_t max_bytes);
// Bytes free on the file system that holds path (or its nearest existing parent); UINT64_MAX if unknown.
uint64_t free_bytes_at(const std::filesystem::path& path);
// pwrite() all of [data, data + n) at offset.
void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& label);

}  // namespace moeforge
