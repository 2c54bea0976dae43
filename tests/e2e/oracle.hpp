// llama.cpp as a test oracle: the scripts scripts/fetch-test-oracle.sh installs (node-llama-cpp's
// prebuilt llama.cpp and @huggingface/gguf), found through MOEFORGE_TEST_ORACLE. A missing oracle
// fails the test with the command that installs it (CI installs it; it is never skipped).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moeforge::test {

using Windows = std::vector<std::vector<int32_t>>;

// Mean NLL per prediction of each model on the windows, under llama.cpp (1 thread, f32 KV cache).
std::vector<double> llama_cpp_nll(const std::vector<std::filesystem::path>& models, const Windows& windows);
// llama.cpp's raw logits of a model at every position of each window: [window][position][token].
std::vector<std::vector<std::vector<float>>> llama_cpp_logits(const std::filesystem::path& model, const Windows& windows);
// Header, metadata and tensor infos as @huggingface/gguf reads them.
nlohmann::json gguf_inspect(const std::filesystem::path& file);

// `count` windows of `length` byte ids from a fixture corpus (ids < 256).
Windows byte_windows(const std::string& corpus, int count, int length);
// The same windows as a .jsonl token file for moeforge eval (one window per line).
std::filesystem::path write_windows_jsonl(const Windows& windows, const std::filesystem::path& file);
// moeforge eval's mean NLL of a model on those windows.
double moeforge_nll(const std::string& model, const std::filesystem::path& windows_jsonl);

// Runs moeforge and requires success, with its stderr in the failure message.
void run_ok(const std::vector<std::string>& args);
// The same verb written twice, as safetensors (DIR/TAG) and as GGUF (DIR/TAG.gguf): llama.cpp on the
// GGUF agrees with moeforge on the safetensors within 1e-4 nats, on `count` windows of `length`
// bytes of `corpus`.
void check_gguf_matches_safetensors(std::vector<std::string> args, const std::filesystem::path& dir, const std::string& tag,
                                    const std::string& corpus, int count, int length);

}  // namespace moeforge::test

namespace moeforge::test {
// Token ids llama.cpp gives each text with the GGUF's vocabulary (no BOS/EOS, specials not parsed).
std::vector<std::vector<int32_t>> llama_cpp_tokenize(const std::filesystem::path& gguf, const std::vector<std::string>& texts);
}  // namespace moeforge::test
