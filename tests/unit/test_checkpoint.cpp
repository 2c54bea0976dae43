// Checkpoint directories: single file, shards with index (cross-checked both ways), shards
// without index, and the errors for inconsistent layouts.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>

#include "core/error.hpp"
#include "formats/checkpoint.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;

namespace {

bool same_bytes(const Checkpoint& a, const TensorInfo& ta, const Checkpoint& b, const TensorInfo& tb) {
  auto x = a.data(ta), y = b.data(tb);
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size()) == 0;
}

void copy_dir(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    fs::copy_file(e.path(), to / e.path().filename());
    fs::permissions(to / e.path().filename(), fs::perms::owner_read | fs::perms::owner_write);
  }
}

}  // namespace

TEST_CASE("sharded fixture holds exactly the single-file tensors") {
  Checkpoint single(test::fixture("models/tiny-mixtral"));
  Checkpoint sharded(test::fixture("models/tiny-mixtral-sharded"));
  CHECK(single.layout() == Layout::kSingleFile);
  CHECK(sharded.layout() == Layout::kIndexedShards);
  CHECK(sharded.shards().size() == 4);
  REQUIRE(single.tensors().size() == sharded.tensors().size());
  for (const TensorInfo* t : single.tensors()) {
    const TensorInfo* u = sharded.find_tensor(t->name);
    REQUIRE(u != nullptr);
    CHECK(u->shape == t->shape);
    CHECK(same_bytes(single, *t, sharded, *u));
  }
  CHECK(sharded.config()["model_type"] == "mixtral");
  CHECK(sharded.side_files().size() == 1);  // generation_config.json
  CHECK(sharded.find_tensor("nope") == nullptr);
  CHECK_THROWS_AS(sharded.require_tensor("nope"), FormatError);
}

TEST_CASE("natural tensor order") {
  Checkpoint c(test::fixture("models/tiny-mixtral"));
  std::vector<std::string> names;
  for (const auto* t : c.tensors()) names.push_back(t->name);
  auto l1 = std::find(names.begin(), names.end(), "model.layers.1.input_layernorm.weight");
  auto l2 = std::find(names.begin(), names.end(), "model.layers.2.input_layernorm.weight");
  CHECK(l1 < l2);
}

TEST_CASE("index inconsistencies are errors naming the index, shard and tensor") {
  test::ScratchDir dir("index");
  fs::path d = dir / "m";
  copy_dir(test::fixture("models/tiny-mixtral-sharded"), d);
  fs::path index = d / "model.safetensors.index.json";
  std::string original = test::read_text(index);

  auto expect_error = [&](const std::string& text, const std::string& needle) {
    test::write_bytes(index, text);
    try {
      Checkpoint c(d);
      FAIL("no error for: " << needle);
    } catch (const FormatError& e) {
      INFO(std::string(e.what()));
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
      CHECK(std::string(e.what()).find(d.string()) != std::string::npos);
    }
  };
  // A shard that does not exist.
  std::string missing_shard = original;
  for (size_t at; (at = missing_shard.find("model-00004-of-00004")) != std::string::npos;)
    missing_shard.replace(at, 20, "model-00009-of-00004");
  expect_error(missing_shard, "which does not exist");
  // The index lists a tensor the shard lacks.
  std::string extra = original;
  extra.replace(extra.find("\"lm_head.weight\""), 16, "\"lm_head.weightX\"");
  expect_error(extra, "that shard does not hold it");
  // Not JSON.
  expect_error("{", "not valid JSON");
  expect_error("{\"weight_map\": 3}", "expected an object with a \"weight_map\" object");
}

TEST_CASE("shards without index; duplicates across shards are rejected") {
  test::ScratchDir dir("noindex");
  fs::path d = dir / "m";
  copy_dir(test::fixture("models/tiny-mixtral-sharded"), d);
  fs::remove(d / "model.safetensors.index.json");
  Checkpoint c(d);
  CHECK(c.layout() == Layout::kUnindexedShards);
  CHECK(c.tensors().size() == 96);
  fs::copy_file(d / "model-00001-of-00004.safetensors", d / "copy.safetensors");
  CHECK_THROWS_WITH_AS(Checkpoint{d}, doctest::Contains("also stored in"), FormatError);
}

TEST_CASE("directories without weights and missing paths") {
  test::ScratchDir dir("empty");
  CHECK_THROWS_WITH_AS(Checkpoint{dir.path()}, doctest::Contains("no .safetensors files"), FormatError);
  CHECK_THROWS_AS(Checkpoint{dir / "missing"}, IoError);
}
