// The sharded writer: bit-exact round trips for every dtype, HF shard naming and index, the
// reference serializer's layout, determinism across thread counts, and atomicity on failure.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "formats/checkpoint.hpp"
#include "formats/convert_plan.hpp"
#include "formats/sharded_writer.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
namespace fs = std::filesystem;

namespace {

// A tensor whose bytes are a seeded pattern, produced by rows.
OutputTensor pattern_tensor(const std::string& name, DType dtype, Shape shape, uint32_t seed) {
  OutputTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  auto bytes = std::make_shared<std::vector<std::byte>>(t.nbytes());
  std::mt19937 rng(seed);
  for (auto& b : *bytes) b = static_cast<std::byte>(rng() & 0xff);
  uint64_t row = t.row_bytes();
  t.produce = [bytes, row](int64_t r0, int64_t r1, std::byte* out) {
    std::memcpy(out, bytes->data() + r0 * row, static_cast<size_t>(r1 - r0) * row);
  };
  t.source = "pattern";
  return t;
}

std::vector<std::byte> expected_bytes(const OutputTensor& t) {
  std::vector<std::byte> out(t.nbytes());
  if (!out.empty()) t.produce(0, t.rows(), out.data());
  return out;
}

Plan every_dtype_plan() {
  Plan p;
  uint32_t seed = 1;
  for (int i = 0; i < kDTypeCount; ++i) {
    auto d = static_cast<DType>(i);
    p.tensors.push_back(pattern_tensor("t." + std::string(dtype_name(d)), d, {3, 5}, seed++));
  }
  p.tensors.push_back(pattern_tensor("scalar", DType::kF32, {}, seed++));
  p.tensors.push_back(pattern_tensor("empty", DType::kF32, {0, 4}, seed++));
  p.tensors.push_back(pattern_tensor("big", DType::kBF16, {64, 33}, seed++));
  p.config = {{"model_type", "test"}};
  return p;
}

void check_round_trip(const Plan& p, const fs::path& out) {
  Checkpoint c(out);
  REQUIRE(c.tensors().size() == p.tensors.size());
  for (const auto& t : p.tensors) {
    const TensorInfo& r = c.require_tensor(t.name);
    CHECK(r.dtype == t.dtype);
    CHECK(r.shape == t.shape);
    auto want = expected_bytes(t);
    auto got = c.data(r);
    REQUIRE(got.size() == want.size());
    CHECK((want.empty() || std::memcmp(got.data(), want.data(), want.size()) == 0));
  }
}

std::string all_bytes(const fs::path& dir) {
  std::string s;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) s += f.filename().string() + test::read_text(f);
  return s;
}

}  // namespace

TEST_CASE("write -> read is bit-exact for every dtype, single file and sharded") {
  Plan p = every_dtype_plan();
  test::ScratchDir dir("rt");
  WriteOptions o;
  o.threads = 3;
  o.chunk_bytes = 64;  // many chunks per tensor
  write_checkpoint(p, dir / "single", o);
  CHECK(fs::exists(dir / "single/model.safetensors"));
  CHECK(fs::exists(dir / "single/config.json"));
  check_round_trip(p, dir / "single");

  o.max_shard_size = 100;
  write_checkpoint(p, dir / "sharded", o);
  Checkpoint c(dir / "sharded");
  CHECK(c.layout() == Layout::kIndexedShards);
  CHECK(c.shards().size() > 3);
  CHECK(fs::exists(dir / ("sharded/model-00001-of-" + [&] {
                     char b[8];
                     std::snprintf(b, sizeof b, "%05zu", c.shards().size());
                     return std::string(b);
                   }() + ".safetensors")));
  check_round_trip(p, dir / "sharded");
  auto index = nlohmann::json::parse(test::read_text(dir / "sharded/model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == p.total_bytes());
}

TEST_CASE("same plan, different thread counts: identical bytes") {
  Plan p = every_dtype_plan();
  test::ScratchDir dir("det");
  WriteOptions o;
  o.chunk_bytes = 50;
  o.max_shard_size = 200;
  o.threads = 1;
  write_checkpoint(p, dir / "a", o);
  o.threads = 7;
  write_checkpoint(p, dir / "b", o);
  CHECK(all_bytes(dir / "a") == all_bytes(dir / "b"));
}

TEST_CASE("layout matches the reference serializer: data section and index identical to HF") {
  test::ScratchDir dir("hf");
  Checkpoint in(test::fixture("models/tiny-mixtral"));
  Plan p = plan_convert(in, std::nullopt);
  WriteOptions o;
  o.max_shard_size = parse_size("600KB");
  write_checkpoint(p, dir / "out", o);
  fs::path ref = test::fixture("models/tiny-mixtral-sharded");
  CHECK(test::read_text(dir / "out/model.safetensors.index.json") == test::read_text(ref / "model.safetensors.index.json"));
  for (int i = 1; i <= 4; ++i) {
    std::string name = "model-0000" + std::to_string(i) + "-of-00004.safetensors";
    SafetensorsFile ours(dir / "out" / name), theirs(ref / name);
    std::string a = test::read_text(dir / "out" / name).substr(ours.header().data_start);
    std::string b = test::read_text(ref / name).substr(theirs.header().data_start);
    CHECK(a == b);
    CHECK(ours.header().data_start % 8 == 0);
  }
}

TEST_CASE("the writer refuses to clobber inputs or existing outputs") {
  test::ScratchDir dir("refuse");
  Plan p = every_dtype_plan();
  write_checkpoint(p, dir / "o", {});
  CHECK_THROWS_WITH_AS(write_checkpoint(p, dir / "o", {}), doctest::Contains("exists and is not empty"), UsageError);
  WriteOptions force;
  force.force = true;
  force.max_shard_size = 100;
  write_checkpoint(p, dir / "o", force);  // replaces the single file by shards
  CHECK_FALSE(fs::exists(dir / "o/model.safetensors"));
  check_round_trip(p, dir / "o");
  Plan from_input = p;
  from_input.inputs = {dir / "o"};
  CHECK_THROWS_WITH_AS(write_checkpoint(from_input, dir / "o", force), doctest::Contains("inputs are never modified"), UsageError);
}

TEST_CASE("a failing producer leaves nothing that looks like a checkpoint") {
  test::ScratchDir dir("fail");
  Plan p = every_dtype_plan();
  p.tensors[5].produce = [](int64_t, int64_t, std::byte*) { throw FormatError("boom in producer"); };
  CHECK_THROWS_WITH_AS(write_checkpoint(p, dir / "o", {}), doctest::Contains("boom"), FormatError);
  for (const auto& e : fs::directory_iterator(dir / "o")) FAIL("left behind: " << e.path());
}

TEST_CASE("sizes") {
  CHECK(parse_size("5GB") == 5'000'000'000ull);
  CHECK(parse_size("2GiB") == 2147483648ull);
  CHECK(parse_size("500MB") == 500'000'000ull);
  CHECK(parse_size("600KB") == 600'000ull);
  CHECK(parse_size("1.5GB") == 1'500'000'000ull);
  CHECK(parse_size("123") == 123ull);
  CHECK_THROWS_AS(parse_size("5XB"), UsageError);
  CHECK_THROWS_AS(parse_size("GB"), UsageError);
  CHECK_THROWS_AS(parse_size("0"), UsageError);
}
