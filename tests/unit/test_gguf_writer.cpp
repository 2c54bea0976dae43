// GGUF writer: what the reader (and llama.cpp's rules) see in a written file — every metadata type,
// tensor infos, consecutive 32-aligned offsets, the bytes the producers gave, and split files;
// the per-tensor type rules; the Hugging Face ↔ GGUF name table.
#include <doctest/doctest.h>

#include <cstring>

#include "formats/gguf.hpp"
#include "formats/gguf_writer.hpp"
#include "model/gguf_arch.hpp"
#include "model/gguf_types.hpp"
#include "tests/test_support.hpp"

using namespace moeforge;
using namespace moeforge::test;
using ojson = nlohmann::ordered_json;

namespace {

GgufTensorPlan tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, uint8_t fill) {
  GgufTensorPlan t;
  t.name = name;
  t.type = type;
  t.ne = std::move(ne);
  uint64_t row = t.row_bytes();
  t.produce = [fill, row](int64_t r0, int64_t r1, std::byte* out) {
    for (int64_t r = r0; r < r1; ++r) std::memset(out + (r - r0) * row, fill + static_cast<int>(r % 7), row);
  };
  return t;
}

GgufPlan sample_plan() {
  GgufPlan p;
  p.metadata["general.architecture"] = gguf_value("STRING", "llama");
  p.metadata["a.u8"] = gguf_value("UINT8", 200);
  p.metadata["a.i16"] = gguf_value("INT16", -300);
  p.metadata["a.u32"] = gguf_value("UINT32", 4000000000u);
  p.metadata["a.i64"] = gguf_value("INT64", -5);
  p.metadata["a.f32"] = gguf_value("FLOAT32", 1e-5f);
  p.metadata["a.f64"] = gguf_value("FLOAT64", 0.1);
  p.metadata["a.flag"] = gguf_value("BOOL", true);
  p.metadata["a.names"] = gguf_array("STRING", {"x", "", "z z"});
  p.metadata["a.ints"] = gguf_array("INT32", {1, -2, 3});
  p.tensors.push_back(tensor("norm.weight", GgmlType::kF32, {5}, 1));           // 20 bytes: padded to 32
  p.tensors.push_back(tensor("blk.0.ffn_gate_exps.weight", GgmlType::kQ8_0, {64, 3, 4}, 9));
  p.tensors.push_back(tensor("token_embd.weight", GgmlType::kF16, {8, 11}, 50));
  return p;
}

}  // namespace

TEST_CASE("gguf writer: metadata types, tensor infos, aligned consecutive offsets and data") {
  ScratchDir dir("gguf-writer");
  GgufPlan plan = sample_plan();
  WriteOptions o;
  o.threads = 2;
  o.chunk_bytes = 100;  // many small jobs
  write_gguf(plan, dir / "x.gguf", std::nullopt, o);
  GgufFile g = read_gguf(dir / "x.gguf");
  CHECK(g.version == 3);
  CHECK(g.data_start % 32 == 0);
  for (const auto& item : plan.metadata.items()) {
    const std::string& key = item.key();  // not a structured binding: CAPTURE's lambda cannot take one in clang
    const auto& e = item.value();
    CAPTURE(key);
    CHECK(g.metadata[key]["type"] == e["type"]);
    CHECK(g.metadata[key]["value"] == e["value"]);
  }
  CHECK(g.metadata["a.f32"]["value"].get<float>() == 1e-5f);
  REQUIRE(g.tensors.size() == 3);
  std::string bytes = read_text(dir / "x.gguf");
  uint64_t offset = 0;
  for (size_t i = 0; i < 3; ++i) {
    const auto& t = g.tensors[i];
    CAPTURE(t.name);
    CHECK(t.name == plan.tensors[i].name);
    CHECK(t.ne == plan.tensors[i].ne);
    CHECK(t.offset == offset);  // llama.cpp requires exactly these offsets
    std::string want(plan.tensors[i].nbytes(), '\0');
    plan.tensors[i].produce(0, plan.tensors[i].rows(), reinterpret_cast<std::byte*>(want.data()));
    CHECK(bytes.substr(g.data_start + t.offset, t.nbytes) == want);
    offset += (t.nbytes + 31) / 32 * 32;
  }
  CHECK(bytes.size() == g.data_start + offset);
}

TEST_CASE("gguf writer: split files hold the split keys, the model keys only in the first") {
  ScratchDir dir("gguf-split");
  GgufPlan plan = sample_plan();
  auto shards = layout_gguf(plan, dir / "m.gguf", 100);
  REQUIRE(shards.size() == 3);
  CHECK(shards[0].path == dir / "m-00001-of-00003.gguf");
  CHECK(shards[2].path == dir / "m-00003-of-00003.gguf");
  write_gguf(plan, dir / "m.gguf", 100, WriteOptions{});
  GgufFile first = read_gguf(shards[0].path), last = read_gguf(shards[2].path);
  CHECK(first.metadata.size() == plan.metadata.size() + 3);
  CHECK(first.metadata["split.count"]["type"] == "UINT16");
  CHECK(first.metadata["split.tensors.count"]["value"] == 3);
  CHECK(last.metadata.size() == 3);
  CHECK(last.metadata["split.no"]["value"] == 2);
  CHECK(last.tensors.size() == 1);
  CHECK(last.tensors[0].offset == 0);
  CHECK(layout_gguf(plan, dir / "m.gguf", 1u << 30).size() == 1);  // fits: one file, no split keys
}

TEST_CASE("gguf types: what stays F32, fallbacks, and llama-quantize's Q4_K_M mix") {
  GgufTypeContext ctx{8, 4, 8};
  auto type = [&](const std::string& n, std::vector<uint64_t> ne, GgmlType want, bool out = false, int v = -1) {
    return gguf_tensor_type(n, ne, want, out, ctx, v);
  };
  CHECK(type("blk.0.attn_norm.weight", {256}, GgmlType::kQ4_K) == GgmlType::kF32);
  CHECK(type("blk.0.attn_q.bias", {256}, GgmlType::kF16) == GgmlType::kF32);
  CHECK(type("blk.0.ffn_gate_inp.weight", {256, 8}, GgmlType::kQ8_0) == GgmlType::kF32);
  CHECK(type("blk.0.ffn_gate_inp_shexp.weight", {256, 1}, GgmlType::kQ8_0) == GgmlType::kF32);
  CHECK(type("blk.0.ffn_up.weight", {64, 96}, GgmlType::kBF16) == GgmlType::kBF16);
  CHECK(type("blk.0.ffn_down_exps.weight", {48, 64, 8}, GgmlType::kQ8_0) == GgmlType::kF16);  // converter: rows not whole blocks
  CHECK(type("blk.3.ffn_up.weight", {64, 96}, GgmlType::kQ4_K) == GgmlType::kQ8_0);          // not whole 256-blocks
  CHECK(type("output.weight", {256, 1000}, GgmlType::kQ4_K, true) == GgmlType::kQ6_K);
  CHECK(type("output.weight", {64, 1000}, GgmlType::kQ4_0, true) == GgmlType::kQ8_0);
  CHECK(type("output.weight", {256, 1000}, GgmlType::kQ8_0, true) == GgmlType::kQ8_0);
  // use_more_bits(i, 8): layers 0, 7, and 3 and 6 ((i − 1) mod 3 == 2) get Q6_K in Q4_K_M.
  for (int l = 0; l < 8; ++l) {
    CAPTURE(l);
    bool more = l == 0 || l == 7 || l == 3 || l == 6;
    CHECK(type("blk." + std::to_string(l) + ".ffn_down.weight", {256, 256}, GgmlType::kQ4_K) == (more ? GgmlType::kQ6_K : GgmlType::kQ4_K));
    CHECK(type("blk." + std::to_string(l) + ".attn_v.weight", {256, 256}, GgmlType::kQ5_K, false, l) == (more ? GgmlType::kQ6_K : GgmlType::kQ5_K));
    CHECK(type("blk." + std::to_string(l) + ".ffn_down.weight", {256, 256}, GgmlType::kQ4_0) == GgmlType::kQ4_0);
  }
  GgufTypeContext eight{8, 8, 8};
  CHECK(gguf_tensor_type("blk.1.attn_k.weight", {256, 256}, GgmlType::kQ4_K, false, eight, -1) == GgmlType::kQ8_0);
  CHECK(gguf_tensor_type("blk.1.attn_v.weight", {256, 256}, GgmlType::kQ4_0, false, eight, 1) == GgmlType::kQ8_0);
  CHECK(gguf_tensor_type("blk.1.attn_output.weight", {256, 256}, GgmlType::kQ4_K, false, eight, -1) == GgmlType::kQ5_K);
}

TEST_CASE("gguf names: the llama q/k permutation, stacked experts, the shared-expert gate, DeepSeek's kv_b") {
  const GgufArch& llama = *find_gguf_arch("mixtral");
  auto q = gguf_names_for(llama, "model.layers.3.self_attn.q_proj.weight");
  REQUIRE(q.size() == 1);
  CHECK(gguf_name(q[0], 3) == "blk.3.attn_q.weight");
  CHECK(q[0].layout == GgufLayout::kRopePairs);
  auto v = gguf_names_for(llama, "model.layers.3.self_attn.v_proj.weight");
  CHECK(v[0].layout == GgufLayout::kPlain);
  auto w2 = gguf_names_for(llama, "model.layers.0.block_sparse_moe.experts.5.w2.weight");
  CHECK(gguf_name(w2[0], 0) == "blk.0.ffn_down_exps.weight");
  CHECK(w2[0].layout == GgufLayout::kStacked);
  const GgufArch& qwen = *find_gguf_arch("qwen2_moe");
  CHECK(gguf_names_for(qwen, "model.layers.0.self_attn.q_proj.weight")[0].layout == GgufLayout::kPlain);
  CHECK(gguf_name(gguf_names_for(qwen, "model.layers.1.mlp.shared_expert_gate.weight")[0], 1) == "blk.1.ffn_gate_inp_shexp.weight");
  CHECK(gguf_name(gguf_names_for(qwen, "model.layers.1.post_attention_layernorm.weight")[0], 1) == "blk.1.ffn_norm.weight");
  CHECK(gguf_names_for(qwen, "model.layers.1.mlp.unknown.weight").empty());
  const GgufArch& ds = *find_gguf_arch("deepseek_v3");
  auto kvb = gguf_names_for(ds, "model.layers.2.self_attn.kv_b_proj.weight");
  REQUIRE(kvb.size() == 2);
  CHECK(gguf_name(kvb[0], 2) == "blk.2.attn_k_b.weight");
  CHECK(gguf_name(kvb[1], 2) == "blk.2.attn_v_b.weight");
  CHECK(gguf_name(gguf_names_for(ds, "model.layers.2.mlp.gate.e_score_correction_bias")[0], 2) == "blk.2.exp_probs_b.bias");
  CHECK(gguf_archs_named("llama").size() == 3);
}
