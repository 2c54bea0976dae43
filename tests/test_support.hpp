// Helpers shared by the unit and end-to-end tests: fixture paths and scratch directories.
#pragma once
#include <filesystem>
#include <string>

namespace moeforge::test {

std::filesystem::path fixtures();                        // ../shared/fixtures
std::filesystem::path fixture(const std::string& rel);   // fixtures() / rel
// The repository's own reference data: tests/reference/families/models/<rel>.
std::filesystem::path family_model(const std::string& rel);
// A fresh empty directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag);
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

std::string read_text(const std::filesystem::path& p);
void write_bytes(const std::filesystem::path& p, const std::string& bytes);
// A float32 llama-named checkpoint of about `mb` megabytes (one 512×512 tensor per MB), written by the library.
void make_big_checkpoint(const std::filesystem::path& dir, int mb);

}  // namespace moeforge::test
