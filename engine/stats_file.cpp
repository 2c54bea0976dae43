#include "engine/stats_file.hpp"

#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/error.hpp"
#include "formats/safetensors.hpp"
#include "formats/safetensors_writer.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

constexpr const char* kFormat = "moeforge-stats";
constexpr int kVersion = 2;

// The per-expert statistics, with their storage in ExpertLayerStats and a meaning for the file.
struct VecField {
  const char* name;
  VecD ExpertLayerStats::*member;
  const char* meaning;
};
struct MatField {
  const char* name;
  MatD ExpertLayerStats::*member;
  const char* meaning;
};
const VecField kVecFields[] = {
    {"count", &ExpertLayerStats::count, "tokens routed to the expert"},
    {"top1_count", &ExpertLayerStats::top1_count, "tokens whose highest-weighted expert it is"},
    {"gate_sum", &ExpertLayerStats::gate_sum, "sum of the gate weights the forward pass used"},
    {"prob_sum", &ExpertLayerStats::prob_sum, "sum of softmax probabilities over all tokens"},
    {"reap_sum", &ExpertLayerStats::reap_sum, "sum over routed tokens of gate * ||expert output||"},
    {"ean_sum", &ExpertLayerStats::ean_sum, "sum over routed tokens of ||expert output||"},
    {"max_act", &ExpertLayerStats::max_act, "max over routed tokens of max |expert output element|"},
    {"easy_ep_sum", &ExpertLayerStats::easy_ep_sum, "sum of gate * ||output|| * max(0, 1 - cos(h, h + r))"},
    {"logit_sum", &ExpertLayerStats::logit_sum, "sum of router logits over all tokens"},
};
const MatField kMatFields[] = {
    {"output_sum", &ExpertLayerStats::output_sum, "[E,H] sum of expert outputs over routed tokens"},
    {"logit_gram", &ExpertLayerStats::logit_gram, "[E,E] sum of logit_i * logit_j over all tokens"},
    {"coactivation", &ExpertLayerStats::coactivation, "[E,E] tokens routed to both experts"},
    {"all_output_sum", &ExpertLayerStats::all_output_sum, "[E,H] sum of every expert's output over all tokens"},
    {"output_cos_sum", &ExpertLayerStats::output_cos_sum, "[E,E] sum over all tokens of cos(y_i, y_j)"},
};

std::string prefix(size_t f, int l) { return "files." + std::to_string(f) + ".layers." + std::to_string(l) + "."; }

void add(StatsTensors& out, const std::string& name, const double* data, std::vector<int64_t> shape) {
  StatTensor t{name, std::move(shape), {}};
  t.values.assign(data, data + shape_numel(t.shape));
  out.tensors.push_back(std::move(t));
}

using TensorIndex = std::unordered_map<std::string, const StatTensor*>;

// The tensor `name`, checked to have `shape`.
const double* take(const TensorIndex& index, const std::string& label, const std::string& name, const Shape& shape) {
  auto it = index.find(name);
  if (it == index.end()) throw FormatError(where(label, name) + "missing from the statistics file");
  const StatTensor* t = it->second;
  if (t->shape != shape) throw FormatError(where(label, name) + "expected F64 " + shape_string(shape) + ", found F64 " + shape_string(t->shape));
  return t->values.data();
}

nlohmann::json meanings(bool router_gram) {
  nlohmann::json m = nlohmann::json::object();
  if (router_gram) m["router_input_gram"] = "[H,H] sum over all tokens of x x^T, x the router input (MoE layers)";
  for (const auto& f : kVecFields) m[f.name] = f.meaning;
  for (const auto& f : kMatFields) m[f.name] = f.meaning;
  m["router_input_sum"] = "[H] sum of the post-attention-norm hidden state (router input) over all tokens";
  m["tokens"] = "tokens observed";
  return m;
}

}  // namespace

StatsTensors to_tensors(const CalibrationStats& s) {
  StatsTensors out;
  nlohmann::json files = nlohmann::json::array();
  for (size_t fi = 0; fi < s.files.size(); ++fi) {
    const FileStats& fs = s.files[fi];
    files.push_back({{"path", fs.file}, {"tokens", fs.tokens}});
    add(out, "files." + std::to_string(fi) + ".tokens", &fs.tokens, {1});
    for (int l = 0; l < s.n_layers; ++l) {
      const VecD& r = fs.router_input_sum[static_cast<size_t>(l)];
      add(out, prefix(fi, l) + "router_input_sum", r.data(), {s.hidden});
      if (!s.moe_layer[static_cast<size_t>(l)]) continue;
      const ExpertLayerStats& e = fs.experts[static_cast<size_t>(l)];
      add(out, prefix(fi, l) + "tokens", &e.tokens, {1});
      if (s.router_gram) add(out, prefix(fi, l) + "router_input_gram", fs.router_input_gram[static_cast<size_t>(l)].data(), {s.hidden, s.hidden});
      for (const auto& f : kVecFields) add(out, prefix(fi, l) + f.name, (e.*f.member).data(), {s.n_experts});
      for (const auto& f : kMatFields) {
        const MatD& m = e.*f.member;
        if (m.size() > 0) add(out, prefix(fi, l) + f.name, m.data(), {m.rows(), m.cols()});
      }
    }
  }
  out.description = {{"version", kVersion}, {"model", s.model}, {"model_type", s.model_type}, {"n_layers", s.n_layers},
                     {"hidden", s.hidden}, {"n_experts", s.n_experts}, {"top_k", s.top_k}, {"moe_layers", s.moe_layer},
                     {"all_outputs", s.all_outputs}, {"files", files}, {"stats", meanings(s.router_gram)}};
  if (s.router_gram) out.description["router_gram"] = true;
  if (!s.run.is_null()) out.description["run"] = s.run;
  return out;
}

CalibrationStats from_tensors(const StatsTensors& stats, const std::string& label) {
  const nlohmann::json& d = stats.description;
  TensorIndex t;
  for (const auto& x : stats.tensors) t[x.name] = &x;
  try {
    CalibrationStats s;
    s.model = d.at("model");
    s.model_type = d.at("model_type");
    s.n_layers = d.at("n_layers");
    s.hidden = d.at("hidden");
    s.n_experts = d.at("n_experts");
    s.top_k = d.at("top_k");
    s.moe_layer = d.at("moe_layers").get<std::vector<bool>>();
    s.all_outputs = d.at("all_outputs");
    s.router_gram = d.value("router_gram", false);
    if (d.contains("run")) s.run = d["run"];
    if (s.n_layers < 0 || s.hidden < 0 || s.n_experts < 0 || s.moe_layer.size() != static_cast<size_t>(s.n_layers))
      throw FormatError(label + ": malformed statistics description (moe_layers has the wrong length, or a negative size)");
    for (size_t fi = 0; fi < d.at("files").size(); ++fi) {
      FileStats f;
      f.file = d["files"][fi].at("path");
      f.tokens = *take(t, label, "files." + std::to_string(fi) + ".tokens", {1});
      f.experts.resize(static_cast<size_t>(s.n_layers));
      for (int l = 0; l < s.n_layers; ++l) {
        f.router_input_sum.push_back(Eigen::Map<const VecD>(take(t, label, prefix(fi, l) + "router_input_sum", {s.hidden}), s.hidden));
        if (!s.moe_layer[static_cast<size_t>(l)]) continue;
        if (s.router_gram) {
          f.router_input_gram.resize(static_cast<size_t>(s.n_layers));
          f.router_input_gram[static_cast<size_t>(l)] =
              Eigen::Map<const MatD>(take(t, label, prefix(fi, l) + "router_input_gram", {s.hidden, s.hidden}), s.hidden, s.hidden);
        }
        ExpertLayerStats& e = f.experts[static_cast<size_t>(l)];
        e.init(s.n_experts, s.hidden, s.all_outputs);
        e.tokens = *take(t, label, prefix(fi, l) + "tokens", {1});
        for (const auto& fld : kVecFields) e.*fld.member = Eigen::Map<const VecD>(take(t, label, prefix(fi, l) + fld.name, {s.n_experts}), s.n_experts);
        for (const auto& fld : kMatFields) {
          MatD& m = e.*fld.member;
          if (m.size() > 0) m = Eigen::Map<const MatD>(take(t, label, prefix(fi, l) + fld.name, {m.rows(), m.cols()}), m.rows(), m.cols());
        }
      }
      s.files.push_back(std::move(f));
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(label + ": malformed statistics description (" + e.what() + ")");
  }
}

void write_stats(const StatsTensors& s, OutputTransaction& tx, const std::filesystem::path& path) {
  std::vector<MemoryTensor> tensors;
  for (const auto& t : s.tensors) {
    MemoryTensor m{t.name, DType::kF64, t.shape, std::vector<std::byte>(t.values.size() * sizeof(double))};
    std::memcpy(m.bytes.data(), t.values.data(), m.bytes.size());
    tensors.push_back(std::move(m));
  }
  write_safetensors_file(tx, path, tensors, {{"format", kFormat}, {"moeforge_stats", s.description.dump()}});
}

void write_stats(const CalibrationStats& s, OutputTransaction& tx, const std::filesystem::path& path) { write_stats(to_tensors(s), tx, path); }

bool is_stats_file(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) return false;
  try {
    SafetensorsFile f(path);
    auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kFormat;
  } catch (const Error&) {
    return false;
  }
}

StatsTensors read_stats_tensors(const std::filesystem::path& path) {
  SafetensorsFile file(path);
  const auto& meta = file.metadata();
  auto fmt = meta.find("format");
  auto body = meta.find("moeforge_stats");
  if (fmt == meta.end() || fmt->second != kFormat || body == meta.end())
    throw FormatError(path.string() + ": not a moeforge statistics file (__metadata__.format is not \"moeforge-stats\"); hint: create one with `moeforge observe`");
  StatsTensors s;
  try {
    s.description = nlohmann::json::parse(body->second);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + ": malformed statistics description (" + e.what() + ")");
  }
  if (!s.description.is_object()) throw FormatError(path.string() + ": malformed statistics description (not a JSON object)");
  for (const auto& t : file.tensors()) {
    if (t.dtype != DType::kF64)
      throw FormatError(where(path.string(), t.name) + "expected F64, found " + std::string(dtype_name(t.dtype)) + " (statistics are float64)");
    s.tensors.push_back({t.name, t.shape, read_f64(t)});
  }
  return s;
}

CalibrationStats read_stats(const std::filesystem::path& path) { return from_tensors(read_stats_tensors(path), path.string()); }

void check_stats_match(const CalibrationStats& s, const ModelConfig& m, const std::string& label) {
  auto mismatch = [&](const std::string& what, int64_t stats, int64_t model) {
    throw MismatchError(label + ": statistics are for a model with " + what + " " + std::to_string(stats) + ", but " + m.label +
                        " has " + std::to_string(model) + " (computed on " + s.model + "); hint: run `moeforge observe` on this model");
  };
  if (s.n_layers != m.n_layers) mismatch("layers", s.n_layers, m.n_layers);
  if (s.hidden != m.hidden) mismatch("hidden size", s.hidden, m.hidden);
  if (s.n_experts != m.n_experts) mismatch("experts per layer", s.n_experts, m.n_experts);
  for (int l = 0; l < m.n_layers; ++l)
    if (s.moe_layer[static_cast<size_t>(l)] != m.is_moe_layer(l)) mismatch("MoE layer " + std::to_string(l) + " =", s.moe_layer[l], m.is_moe_layer(l));
}

nlohmann::ordered_json describe_stats(const CalibrationStats& s, const std::string& path) {
  nlohmann::ordered_json r;
  r["path"] = path;
  r["format"] = kFormat;
  r["model"] = s.model;
  r["model_type"] = s.model_type;
  r["layers"] = s.n_layers;
  r["experts"] = s.n_experts;
  r["experts_per_token"] = s.top_k;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : s.files) files.push_back({{"path", f.file}, {"tokens", f.tokens}});
  r["files"] = files;
  if (s.run.is_object() && s.run.contains("datasets")) {
    nlohmann::ordered_json coverage = nlohmann::ordered_json::array();
    for (const auto& ds : s.run["datasets"]) {
      std::string text;
      for (const auto& piece : ds.value("pieces", nlohmann::json::array())) {
        const auto& w = piece.value("windows", nlohmann::json());
        text += (text.empty() ? "" : ", ") + std::string("shard ") + piece.at("shard").at(0).dump() + "/" + piece.at("shard").at(1).dump() +
                (w.is_null() ? "" : " (windows " + w.at(0).dump() + "-" + w.at(1).dump() + ")");
      }
      coverage.push_back(text + " of " + ds.value("windows", nlohmann::json()).dump() + " windows" + (ds.value("partial", false) ? ", partial" : ""));
    }
    r["coverage"] = coverage;
  }
  FileStats all = s.merged();
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (int l = 0; l < s.n_layers; ++l) {
    if (!s.moe_layer[static_cast<size_t>(l)]) continue;
    const auto& e = all.experts[static_cast<size_t>(l)];
    VecD freq = e.frequency(), reap = e.reap(), ean = e.ean_mean();
    layers.push_back({{"layer", l}, {"frequency", std::vector<double>(freq.data(), freq.data() + freq.size())},
                      {"reap", std::vector<double>(reap.data(), reap.data() + reap.size())},
                      {"ean_mean", std::vector<double>(ean.data(), ean.data() + ean.size())},
                      {"max_activation", std::vector<double>(e.max_act.data(), e.max_act.data() + e.max_act.size())}});
  }
  r["moe_layers"] = layers;
  return r;
}

}  // namespace moeforge
