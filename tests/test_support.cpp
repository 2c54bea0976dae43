#include "tests/test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace moeforge::test {

std::filesystem::path fixtures() { return MOEFORGE_FIXTURES; }
std::filesystem::path fixture(const std::string& rel) { return fixtures() / rel; }
std::filesystem::path family_model(const std::string& rel) {
  return std::filesystem::path(MOEFORGE_SOURCE_DIR) / "tests/reference/families/models" / rel;
}

ScratchDir::ScratchDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("moeforge-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace moeforge::test
