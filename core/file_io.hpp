// Reading and writing files without surprises: inputs must be regular files (a FIFO or device
// would block or never end, so it is refused before anything reads it), reads and writes loop
// over short counts and EINTR, and every failure is an IoError naming the path.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace moeforge {

// A read-only descriptor of a regular file (symlinks to one are fine); IoError otherwise.
int open_regular_file(const std::filesystem::path& path);
// The whole file.
std::string read_regular_file(const std::filesystem::path& path);
// pwrite() all of [data, data + n) at offset.
void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& label);

}  // namespace moeforge
