// Tokenizer throughput: the eight fixture corpora (512 KiB) once with a fresh tokenizer (cold word
// cache), then repeated to about --mb megabytes; checks decode(encode(text)) == text. Prints MB/s
// per tokenizer. --save DIR writes the long text (text.txt) and each tokenizer's ids (N.ids, one
// per line) so bench/tokenize.sh can compare them with a reference implementation.
//   moeforge_bench_tokenize --corpora ../shared/fixtures/corpora --mb 10 [--save DIR] TOKENIZER...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "text/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string corpora_once(const fs::path& dir) {
  std::string one;
  for (const char* d : {"en", "py", "de", "c"})
    for (const char* f : {"calib.txt", "eval.txt"}) one += read_file(dir / d / f);
  if (one.empty()) throw moeforge::IoError(dir.string() + ": no corpora found");
  return one;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void save(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void save_ids(const fs::path& file, const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += '\n';
    s += std::to_string(ids[i]);
  }
  save(file, s);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path corpora = "../shared/fixtures/corpora", save_dir;
  double mb = 10;
  std::vector<std::string> tokenizers;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--corpora" && i + 1 < argc) corpora = argv[++i];
    else if (a == "--mb" && i + 1 < argc) mb = std::atof(argv[++i]);
    else if (a == "--save" && i + 1 < argc) save_dir = argv[++i];
    else tokenizers.push_back(a);
  }
  if (tokenizers.empty()) {
    std::fprintf(stderr, "usage: %s [--corpora DIR] [--mb N] [--save DIR] TOKENIZER...\n", argv[0]);
    return 2;
  }
  try {
    std::string once = corpora_once(corpora), text;
    while (static_cast<double>(text.size()) < mb * 1e6) text += once;
    if (!save_dir.empty()) save(save_dir / "text.txt", text);
    std::printf("%-44s %7s %12s %12s %10s %9s\n", "tokenizer", "load s", "512K MB/s", "long MB/s", "tokens", "roundtrip");
    for (size_t k = 0; k < tokenizers.size(); ++k) {
      auto t0 = std::chrono::steady_clock::now();
      auto tok = moeforge::load_tokenizer(tokenizers[k]);
      double load = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      tok->encode(once);
      double cold = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      auto ids = tok->encode(text);
      double all = seconds_since(t0);
      bool same = tok->decode(ids) == text;
      if (!save_dir.empty()) save_ids(save_dir / (std::to_string(k) + ".ids"), ids);
      std::printf("%-44s %7.2f %12.1f %12.1f %10zu %9s\n", tokenizers[k].c_str(), load, static_cast<double>(once.size()) / 1e6 / cold,
                  static_cast<double>(text.size()) / 1e6 / all, ids.size(), same ? "ok" : "DIFFERS");
    }
  } catch (const moeforge::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
