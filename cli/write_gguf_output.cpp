#include "cli/write_gguf_output.hpp"

#include <cstdio>

#include "cli/verb.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/output_safety.hpp"
#include "core/parallel.hpp"
#include "core/strings.hpp"
#include "formats/ggml_quants.hpp"
#include "formats/gguf.hpp"
#include "formats/gguf_writer.hpp"
#include "model/gguf_export.hpp"
#include "text/gguf_vocab.hpp"

namespace moeforge {
namespace fs = std::filesystem;

namespace {

// Where the vocabulary comes from: the tokenizer files the plan carries over, or a GGUF input.
fs::path vocabulary_source(const Plan& plan) {
  for (const auto& f : plan.side_files)
    if (f.filename() == "tokenizer.json") return f.parent_path();
  for (const auto& in : plan.inputs)
    if (fs::is_regular_file(in) && looks_like_gguf(in)) return in;
  return {};
}

std::optional<uint32_t> input_file_type(const Plan& plan) {
  for (const auto& in : plan.inputs)
    if (fs::is_regular_file(in) && looks_like_gguf(in)) {
      GgufFile g = read_gguf(in);
      if (const auto* v = g.find_value("general.file_type"); v != nullptr && v->is_number_unsigned()) return v->get<uint32_t>();
    }
  return std::nullopt;
}

void print_gguf_plan(const nlohmann::json& d) {
  std::printf("plan (GGUF): %zu tensors, %s in %zu file(s), buffers up to ~%s\n", d["tensors"].size(),
              format_bytes(d["output_bytes"].get<uint64_t>()).c_str(), d["shards"].size(),
              format_bytes(d["peak_buffer_bytes_estimate"].get<uint64_t>()).c_str());
  for (const auto& [key, value] : d["metadata"].items())
    if (key.rfind("tokenizer.", 0) != 0 && key != "moeforge.provenance") std::printf("  %-50s %s\n", key.c_str(), value.get<std::string>().c_str());
  for (const auto& t : d["tensors"]) {
    std::string ne = "[" + join([&] {
      std::vector<std::string> v;
      for (const auto& x : t["shape"]) v.push_back(std::to_string(x.get<uint64_t>()));
      return v;
    }(), ", ") + "]";
    std::printf("  %-40s %-5s %-18s %10s  %s\n", t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(), ne.c_str(),
                format_bytes(t["bytes"].get<uint64_t>()).c_str(), t["source"].get<std::string>().c_str());
  }
  for (const auto& s : d["shards"])
    std::printf("file %s: %zu tensors, %s\n", s["file"].get<std::string>().c_str(), s["tensors"].get<size_t>(), format_bytes(s["bytes"].get<uint64_t>()).c_str());
  for (const auto& n : d["notes"]) std::printf("note: %s\n", n.get<std::string>().c_str());
}

}  // namespace

bool writes_gguf(const ParamValues& p) { return writes_single_file(p, p.str("output")); }

int write_gguf_output(const Plan& plan, const ParamValues& p, const RunContext& ctx) {
  fs::path out = output_path(p.str("output"));
  GgufExportOptions o;
  if (p.has("dtype")) {
    o.type = find_ggml_type_by_name(p.str("dtype"));
    if (!o.type || !can_encode_ggml(*o.type))
      throw UsageError("--dtype " + p.str("dtype") + " cannot be written to GGUF (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k can)");
  } else {
    o.file_type = input_file_type(plan);
  }
  o.name = out.stem().string();
  std::vector<std::string> notes;
  int64_t vocab = plan.config.value("vocab_size", int64_t{0});
  o.vocabulary = gguf_vocabulary(vocabulary_source(plan), plan.config, vocab, &notes);
  GgufPlan g = plan_gguf(plan, o);
  for (const auto& n : notes) g.notes.push_back(n);
  for (const auto& n : plan.notes) g.notes.push_back(n);
  std::optional<uint64_t> max_shard = p.has("max-shard-size") ? std::optional<uint64_t>(p.size("max-shard-size")) : std::nullopt;
  WriteOptions w;
  w.threads = static_cast<int>(p.integer("threads"));
  w.force = p.flag("force");
  if (p.flag("dry-run")) {
    nlohmann::ordered_json d = describe_gguf_plan(g, out, max_shard, resolve_threads(w.threads), w.chunk_bytes);
    d["output"] = out.string();
    // Later recipe steps plan from the Hugging Face view of this output (what reading it gives).
    if (ctx.plan_out != nullptr) *ctx.plan_out = describe_plan(plan, w);
    emit(p, d, [&] { print_gguf_plan(d); });
    return 0;
  }
  WriteReport r = write_gguf(g, out, max_shard, w);
  nlohmann::ordered_json j = {{"output", out.string()}, {"format", "gguf"}, {"files", r.files}, {"tensor_bytes", r.tensor_bytes}, {"seconds", r.seconds}};
  emit(p, j, [&] {
    std::printf("wrote %s: %zu GGUF tensors, %s in %zu file(s), %.2f s\n", out.string().c_str(), g.tensors.size(),
                format_bytes(r.tensor_bytes).c_str(), r.files.size(), r.seconds);
  });
  return 0;
}

}  // namespace moeforge
