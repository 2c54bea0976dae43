// GGUF reader against the fixture's independent parse, and corrupted copies of it.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "formats/gguf.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using json = nlohmann::ordered_json;

namespace {

const std::string kFile = "models/tiny-random-llama-2.gguf";

std::span<const std::byte> as_bytes(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

template <typename T>
void poke(std::string& s, size_t at, T value) {
  std::memcpy(s.data() + at, &value, sizeof(T));
}

std::string error_of(const std::string& bytes) {
  try {
    parse_gguf(as_bytes(bytes), "x.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("GGUF fixture matches the independent parse") {
  json expect = json::parse(test::read_text(test::fixture(kFile + ".json")));
  GgufFile g = read_gguf(test::fixture(kFile));
  CHECK(g.version == expect["version"].get<uint32_t>());
  CHECK(g.tensors.size() == expect["n_tensors"].get<size_t>());
  CHECK(g.metadata.size() == expect["n_kv"].get<size_t>());
  CHECK(g.alignment == expect["alignment"].get<uint64_t>());
  CHECK(g.data_start == expect["data_start"].get<uint64_t>());
  for (const auto& m : expect["metadata"]) {
    CAPTURE(m["key"].get<std::string>());
    const auto& entry = g.metadata[m["key"].get<std::string>()];
    CHECK(entry["type"] == m["type"]);
    if (m["type"] == "ARRAY") {
      CHECK(entry["elem_type"] == m["elem_type"]);
      CHECK(entry["value"].size() == m["count"].get<size_t>());
      for (size_t i = 0; i < m["first"].size(); ++i) CHECK(entry["value"][i] == m["first"][i]);
    } else if (m["type"] == "FLOAT32") {
      CHECK(entry["value"].get<double>() == doctest::Approx(m["value"].get<double>()).epsilon(1e-7));
    } else {
      CHECK(entry["value"] == m["value"]);
    }
  }
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    const auto& t = g.tensors[i];
    const auto& e = expect["tensors"][i];
    CHECK(t.name == e["name"].get<std::string>());
    CHECK(t.ne == e["ne"].get<std::vector<uint64_t>>());
    CHECK(t.shape() == e["shape_row_major"].get<std::vector<uint64_t>>());
    CHECK(t.type_name == e["type"].get<std::string>());
    CHECK(t.offset == e["offset"].get<uint64_t>());
    CHECK(t.nbytes == e["nbytes"].get<uint64_t>());
    CHECK(g.data_start + t.offset == e["abs_offset"].get<uint64_t>());
  }
}

TEST_CASE("corrupted GGUF files give errors, never crashes") {
  json expect = json::parse(test::read_text(test::fixture(kFile + ".json")));
  const std::string good = test::read_text(test::fixture(kFile));
  CHECK(error_of(good).empty());

  std::string bad = good;
  bad[0] = 'X';
  CHECK(error_of(bad).find("bad magic") != std::string::npos);

  bad = good;
  poke<uint32_t>(bad, 4, 1);
  CHECK(error_of(bad).find("GGUF version 1") != std::string::npos);

  bad = good;
  poke<uint64_t>(bad, 8, 0xffffffffffull);
  CHECK(error_of(bad).find("tensor count") != std::string::npos);

  bad = good;
  poke<uint64_t>(bad, 16, 0xffffffffffffull);
  CHECK(error_of(bad).find("key/value count") != std::string::npos);

  // Value type of the first key → unknown.
  size_t rec = expect["metadata"][0]["record_offset"].get<size_t>();
  size_t key_len = expect["metadata"][0]["key"].get<std::string>().size();
  bad = good;
  poke<uint32_t>(bad, rec + 8 + key_len, 99);
  CHECK(error_of(bad).find("unknown value type 99") != std::string::npos);

  // String length of the first value far past the end.
  bad = good;
  poke<uint64_t>(bad, rec + 8 + key_len + 4, 0x7fffffffffffull);
  CHECK(error_of(bad).find("remain") != std::string::npos);

  // Offsets of the last tensor: misaligned, then past the end of the file.
  const auto& last = expect["tensors"].back();
  size_t at = last["record_offset"].get<size_t>() + 8 + last["name"].get<std::string>().size() + 4 +
              8 * last["n_dims"].get<size_t>() + 4;
  bad = good;
  poke<uint64_t>(bad, at, last["offset"].get<uint64_t>() + 3);
  CHECK(error_of(bad).find("not a multiple of the alignment") != std::string::npos);
  bad = good;
  poke<uint64_t>(bad, at, 1ull << 40);
  CHECK(error_of(bad).find("runs past the end") != std::string::npos);
  CHECK(error_of(bad).find(last["name"].get<std::string>()) != std::string::npos);

  // Too many dimensions.
  bad = good;
  poke<uint32_t>(bad, last["record_offset"].get<size_t>() + 8 + last["name"].get<std::string>().size(), 9);
  CHECK(error_of(bad).find("at most 4 allowed") != std::string::npos);

  // A string where a number belongs, and not even UTF-8 (found by the fuzzer): an error, not a throw from the JSON writer.
  std::string key = "general.alignment", odd = "GGUF";
  odd.resize(24 + 8 + key.size() + 4 + 8 + 1);
  poke<uint32_t>(odd, 4, 3);
  poke<uint64_t>(odd, 8, 0);
  poke<uint64_t>(odd, 16, 1);
  poke<uint64_t>(odd, 24, key.size());
  odd.replace(32, key.size(), key);
  poke<uint32_t>(odd, 32 + key.size(), 8);  // STRING
  poke<uint64_t>(odd, 36 + key.size(), 1);
  odd.back() = '\xFF';
  CHECK(error_of(odd).find("general.alignment must be a power of two, found \"\xEF\xBF\xBD\"") != std::string::npos);

  // Every truncation point in the header region fails cleanly.
  for (size_t n = 0; n < 4096; n += 7) CHECK_FALSE(error_of(good.substr(0, n)).empty());
  // Past it, 32 points spread over the rest (each parse reads the whole 32,000-token vocabulary: slow under ASan).
  for (size_t n = 4096; n < good.size(); n += (good.size() - 4096) / 32 + 1) CHECK_FALSE(error_of(good.substr(0, n)).empty());
}
