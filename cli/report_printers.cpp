#include "cli/report_printers.hpp"

#include <cstdio>
#include <string>

#include "core/strings.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {

using ojson = nlohmann::ordered_json;

void print_inspection(const ojson& r) {
  auto line = [](const char* key, const std::string& value) { std::printf("%-26s %s\n", key, value.c_str()); };
  auto str = [](const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  line("path", str(r["path"]));
  line("format", str(r["format"]) + (r.contains("layout") ? " (" + str(r["layout"]) + ")" : ""));
  if (r.contains("gguf_version")) line("gguf version", str(r["gguf_version"]));
  for (const char* key : {"model_type", "architecture", "family", "layers", "hidden_size", "vocab_size", "attention_heads",
                          "kv_heads", "head_dim", "intermediate_size", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
                          "moe_layers", "experts", "experts_per_layer", "expert_layout", "experts_per_token", "expert_intermediate_size",
                          "shared_experts", "shared_expert_intermediate_size", "router"})
    if (r.contains(key) && !r[key].is_null()) line(key, str(r[key]));
  uint64_t total = r["parameters"]["total"].get<uint64_t>();
  line("parameters", format_count(total) + " (" + std::to_string(total) + ")");
  if (r["parameters"].contains("active_per_token")) {
    uint64_t active = r["parameters"]["active_per_token"].get<uint64_t>();
    line("active per token", format_count(active) + " (" + std::to_string(active) + ")");
  }
  if (r.contains("dtypes"))
    for (const auto& [name, e] : r["dtypes"].items())
      line(("dtype " + name).c_str(), std::to_string(e["tensors"].get<uint64_t>()) + " tensors, " +
                                           format_count(e["parameters"].get<uint64_t>()) + " parameters, " +
                                           format_bytes(e["bytes"].get<uint64_t>()));
  if (r.contains("tensor_types")) line("tensor types", str(r["tensor_types"]));
  line("tensors", str(r["tensor_count"]));
  line("bytes on disk", format_bytes(r["bytes_on_disk"].get<uint64_t>()));
  if (r.contains("shards") && r["shards"].size() > 1)
    for (const auto& s : r["shards"])
      line("  shard", str(s["file"]) + ": " + std::to_string(s["tensors"].get<size_t>()) + " tensors, " + format_bytes(s["bytes"].get<uint64_t>()));
  if (r.contains("metadata"))
    for (const auto& [key, e] : r["metadata"].items())
      std::printf("  %-40s %s\n", key.c_str(),
                  e["type"] == "ARRAY" ? ("[" + str(e["elem_type"]) + " x " + str(e["count"]) + "] " + e["first"].dump()).c_str()
                                       : str(e["value"]).c_str());
  if (r.contains("tensors"))
    for (const auto& t : r["tensors"]) {
      std::string shape = shape_string(t["shape"].get<Shape>());
      std::printf("  %-64s %-7s %-18s %10s", str(t["name"]).c_str(), str(t.contains("dtype") ? t["dtype"] : t["type"]).c_str(),
                  shape.c_str(), format_bytes(t["bytes"].get<uint64_t>()).c_str());
      if (t.contains("stats")) {
        const auto& s = t["stats"];
        // With no finite value, min/max/mean/std do not exist: say so rather than print zeros.
        auto num = [](const ojson& v) { return v.is_null() ? std::string("n/a") : format_number(v.get<double>()); };
        bool finite = !s["min"].is_null();
        std::printf("  min %s max %s mean %s std %s l2 %s nan %llu inf %llu", num(s["min"]).c_str(), num(s["max"]).c_str(),
                    finite ? num(s["mean"]).c_str() : "n/a", finite ? num(s["std"]).c_str() : "n/a", num(s["l2"]).c_str(),
                    static_cast<unsigned long long>(s["nan"].get<uint64_t>()), static_cast<unsigned long long>(s["inf"].get<uint64_t>()));
      }
      std::printf("\n");
    }
  for (const auto& w : r["warnings"]) std::printf("warning: %s\n", str(w).c_str());
}

void print_eval(const nlohmann::ordered_json& report) {
  std::printf("%-48s %8s %10s %10s %12s %10s\n", "file", "windows", "mean NLL", "perplexity", "bits/token", "bits/byte");
  for (const auto& f : report["files"]) {
    std::string bpb = f["bits_per_byte"].is_null() ? "-" : std::to_string(f["bits_per_byte"].get<double>());
    std::printf("%-48s %8lld %10.5f %10.4f %12.6f %10s\n", f["file"].get<std::string>().c_str(),
                static_cast<long long>(f["windows"].get<int64_t>()), f["mean_nll"].get<double>(), f["perplexity"].get<double>(),
                f["bits_per_token"].get<double>(), bpb.c_str());
  }
}

void print_stats(const nlohmann::ordered_json& d) {
  std::printf("calibration statistics %s\nmodel %s (%s), %d layers, %d experts, top-%d\n", d["path"].get<std::string>().c_str(),
              d["model"].get<std::string>().c_str(), d["model_type"].get<std::string>().c_str(), d["layers"].get<int>(),
              d["experts"].get<int>(), d["experts_per_token"].get<int>());
  for (const auto& f : d["files"]) std::printf("  data %s: %.0f tokens\n", f["path"].get<std::string>().c_str(), f["tokens"].get<double>());
  if (d.contains("coverage"))
    for (const auto& c : d["coverage"]) std::printf("  covers %s\n", c.get<std::string>().c_str());
  for (const auto& l : d["moe_layers"]) {
    std::printf("layer %d\n  %-7s %10s %12s %12s %12s\n", l["layer"].get<int>(), "expert", "frequency", "REAP", "EAN mean", "max act");
    for (size_t e = 0; e < l["reap"].size(); ++e)
      std::printf("  %-7zu %10.4f %12.6g %12.6g %12.6g\n", e, l["frequency"][e].get<double>(), l["reap"][e].get<double>(),
                  l["ean_mean"][e].get<double>(), l["max_activation"][e].get<double>());
  }
}

void print_diff(const nlohmann::ordered_json& r, size_t max_rows) {
  const auto& s = r["summary"];
  std::printf("%s\n  vs %s\n", r["a"].get<std::string>().c_str(), r["b"].get<std::string>().c_str());
  for (const auto& n : r["only_in_a"]) std::printf("only in A: %s\n", n.get<std::string>().c_str());
  for (const auto& n : r["only_in_b"]) std::printf("only in B: %s\n", n.get<std::string>().c_str());
  size_t shown = 0;
  for (const auto& t : r["tensors"]) {
    if (t["equal"].get<bool>() || shown++ >= max_rows) continue;
    std::string what;
    if (t.contains("shape_a"))
      what = "shape " + shape_string(t["shape_a"].get<Shape>()) + " vs " + shape_string(t["shape_b"].get<Shape>());
    else
      what = "max_abs " + std::to_string(t["max_abs"].get<double>()) + "  rel_l2 " + std::to_string(t["rel_l2"].get<double>());
    if (t["dtype_a"] != t["dtype_b"]) what += "  dtype " + t["dtype_a"].get<std::string>() + " vs " + t["dtype_b"].get<std::string>();
    std::printf("differs: %-60s %s\n", t["name"].get<std::string>().c_str(), what.c_str());
  }
  if (shown > max_rows) std::printf("... %zu more differing tensors (use --json for all)\n", shown - max_rows);
  for (const auto& c : r["config_differences"])
    std::printf("config %s: %s vs %s\n", c["key"].get<std::string>().c_str(), c["a"].dump().c_str(), c["b"].dump().c_str());
  std::printf("%s: %zu common tensors, %zu differ (atol %g, largest abs difference %g), %zu only in A, %zu only in B\n",
              r["equal"].get<bool>() ? "EQUAL" : "DIFFERENT", s["common"].get<size_t>(), s["differing"].get<size_t>(),
              r["atol"].get<double>(), s["max_abs"].get<double>(), s["only_in_a"].get<size_t>(), s["only_in_b"].get<size_t>());
}

void print_plan(const nlohmann::json& d) {
  std::printf("plan: %zu tensors, %s in %zu shard(s), buffers up to ~%s\n", d["tensors"].size(),
              format_bytes(d["output_bytes"].get<uint64_t>()).c_str(), d["shards"].size(),
              format_bytes(d["peak_buffer_bytes_estimate"].get<uint64_t>()).c_str());
  for (const auto& t : d["tensors"]) {
    std::string shape = shape_string(t["shape"].get<Shape>());
    std::printf("  %-60s %-5s %-16s %10s  %s\n", t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                shape.c_str(), format_bytes(t["bytes"].get<uint64_t>()).c_str(), t["source"].get<std::string>().c_str());
  }
  for (const auto& s : d["shards"])
    std::printf("shard %s: %zu tensors, %s\n", s["file"].get<std::string>().c_str(), s["tensors"].get<size_t>(),
                format_bytes(s["bytes"].get<uint64_t>()).c_str());
  for (const auto& f : d["side_files"]) std::printf("copy %s\n", f.get<std::string>().c_str());
  for (const auto& n : d["notes"]) std::printf("note: %s\n", n.get<std::string>().c_str());
}

}  // namespace moeforge
