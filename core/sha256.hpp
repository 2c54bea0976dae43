// SHA-256 (FIPS 180-4), for identifying inputs by content: the data files behind calibration
// statistics, and model fingerprints. Streaming, so files of any size are hashed in constant memory.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace moeforge {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes the hash; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// The hash of a regular file's contents (IoError naming the file otherwise).
std::string sha256_file(const std::filesystem::path& path);

}  // namespace moeforge
