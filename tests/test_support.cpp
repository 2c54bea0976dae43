#include "tests/test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "formats/sharded_writer.hpp"

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

void make_big_checkpoint(const std::filesystem::path& dir, int mb) {
  Plan p;
  for (int i = 0; i < mb; ++i) {
    OutputTensor t;
    t.name = "model.layers." + std::to_string(i) + ".mlp.up_proj.weight";
    t.dtype = DType::kF32;
    t.shape = {512, 512};
    t.produce = [i](int64_t r0, int64_t r1, std::byte* out) {
      auto* f = reinterpret_cast<float*>(out);
      for (int64_t k = 0; k < (r1 - r0) * 512; ++k) f[k] = static_cast<float>((k + i) % 97) * 0.01f;
    };
    p.tensors.push_back(std::move(t));
  }
  p.config = {{"model_type", "llama"}};
  write_checkpoint(p, dir, {});
}

}  // namespace moeforge::test
