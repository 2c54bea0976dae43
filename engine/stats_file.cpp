#include "engine/stats_file.hpp"

#include <cstdio>
#include <cstring>

#include "core/error.hpp"
#include "formats/safetensors.hpp"
#include "formats/safetensors_writer.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {
namespace {

constexpr const char* kFormat = "moeforge-stats";

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

MemoryTensor f64_tensor(const std::string& name, const double* data, Shape shape) {
  MemoryTensor t{name, DType::kF64, shape, std::vector<std::byte>(static_cast<size_t>(shape_numel(shape)) * 8)};
  std::memcpy(t.bytes.data(), data, t.bytes.size());
  return t;
}

std::string prefix(size_t f, int l) { return "files." + std::to_string(f) + ".layers." + std::to_string(l) + "."; }

class StatsReader {
 public:
  explicit StatsReader(const std::filesystem::path& p) : file_(p) {
    for (const auto& t : file_.tensors()) by_name_[t.name] = &t;
  }
  std::vector<double> get(const std::string& name, const Shape& shape) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw FormatError(where(file_.path(), name) + "missing from the statistics file");
    if (it->second->dtype != DType::kF64 || it->second->shape != shape)
      throw FormatError(where(file_.path(), name) + "expected F64 " + shape_string(shape) + ", found " +
                        std::string(dtype_name(it->second->dtype)) + " " + shape_string(it->second->shape));
    return read_f64(*it->second);
  }
  bool has(const std::string& name) const { return by_name_.count(name) > 0; }
  const SafetensorsFile& file() const { return file_; }

 private:
  SafetensorsFile file_;
  std::map<std::string, const TensorInfo*> by_name_;
};

}  // namespace

void write_stats(const CalibrationStats& s, OutputTransaction& tx, const std::filesystem::path& path) {
  std::vector<MemoryTensor> tensors;
  nlohmann::json files = nlohmann::json::array(), meanings = nlohmann::json::object();
  for (const auto& f : kVecFields) meanings[f.name] = f.meaning;
  for (const auto& f : kMatFields) meanings[f.name] = f.meaning;
  meanings["router_input_sum"] = "[H] sum of the post-attention-norm hidden state (router input) over all tokens";
  for (size_t fi = 0; fi < s.files.size(); ++fi) {
    const FileStats& fs = s.files[fi];
    files.push_back({{"path", fs.file}, {"tokens", fs.tokens}});
    tensors.push_back(f64_tensor("files." + std::to_string(fi) + ".tokens", &fs.tokens, {1}));
    for (int l = 0; l < s.n_layers; ++l) {
      const VecD& r = fs.router_input_sum[static_cast<size_t>(l)];
      tensors.push_back(f64_tensor(prefix(fi, l) + "router_input_sum", r.data(), {s.hidden}));
      if (!s.moe_layer[static_cast<size_t>(l)]) continue;
      const ExpertLayerStats& e = fs.experts[static_cast<size_t>(l)];
      tensors.push_back(f64_tensor(prefix(fi, l) + "tokens", &e.tokens, {1}));
      for (const auto& f : kVecFields) tensors.push_back(f64_tensor(prefix(fi, l) + f.name, (e.*f.member).data(), {s.n_experts}));
      for (const auto& f : kMatFields) {
        const MatD& m = e.*f.member;
        if (m.size() > 0) tensors.push_back(f64_tensor(prefix(fi, l) + f.name, m.data(), {m.rows(), m.cols()}));
      }
    }
  }
  nlohmann::json desc = {{"version", 1}, {"model", s.model}, {"model_type", s.model_type}, {"n_layers", s.n_layers},
                         {"hidden", s.hidden}, {"n_experts", s.n_experts}, {"top_k", s.top_k}, {"moe_layers", s.moe_layer},
                         {"all_outputs", s.all_outputs}, {"files", files}, {"stats", meanings}};
  write_safetensors_file(tx, path, tensors, {{"format", kFormat}, {"moeforge_stats", desc.dump()}});
}

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

CalibrationStats read_stats(const std::filesystem::path& path) {
  StatsReader r(path);
  const auto& meta = r.file().metadata();
  auto fmt = meta.find("format");
  auto body = meta.find("moeforge_stats");
  if (fmt == meta.end() || fmt->second != kFormat || body == meta.end())
    throw FormatError(path.string() + ": not a moeforge statistics file (__metadata__.format is not \"moeforge-stats\"); hint: create one with `moeforge observe`");
  nlohmann::json d;
  try {
    d = nlohmann::json::parse(body->second);
    CalibrationStats s;
    s.model = d.at("model");
    s.model_type = d.at("model_type");
    s.n_layers = d.at("n_layers");
    s.hidden = d.at("hidden");
    s.n_experts = d.at("n_experts");
    s.top_k = d.at("top_k");
    s.moe_layer = d.at("moe_layers").get<std::vector<bool>>();
    s.all_outputs = d.at("all_outputs");
    if (s.moe_layer.size() != static_cast<size_t>(s.n_layers)) throw FormatError(path.string() + ": moe_layers has the wrong length");
    for (size_t fi = 0; fi < d.at("files").size(); ++fi) {
      FileStats f;
      f.file = d["files"][fi].at("path");
      f.tokens = r.get("files." + std::to_string(fi) + ".tokens", {1})[0];
      f.experts.resize(static_cast<size_t>(s.n_layers));
      for (int l = 0; l < s.n_layers; ++l) {
        auto v = r.get(prefix(fi, l) + "router_input_sum", {s.hidden});
        f.router_input_sum.push_back(Eigen::Map<VecD>(v.data(), s.hidden));
        if (!s.moe_layer[static_cast<size_t>(l)]) continue;
        ExpertLayerStats& e = f.experts[static_cast<size_t>(l)];
        e.init(s.n_experts, s.hidden, s.all_outputs);
        e.tokens = r.get(prefix(fi, l) + "tokens", {1})[0];
        for (const auto& fld : kVecFields) {
          auto x = r.get(prefix(fi, l) + fld.name, {s.n_experts});
          e.*fld.member = Eigen::Map<VecD>(x.data(), s.n_experts);
        }
        for (const auto& fld : kMatFields) {
          MatD& m = e.*fld.member;
          if (m.size() == 0) continue;
          auto x = r.get(prefix(fi, l) + fld.name, {m.rows(), m.cols()});
          m = Eigen::Map<MatD>(x.data(), m.rows(), m.cols());
        }
      }
      s.files.push_back(std::move(f));
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path.string() + ": malformed statistics description (" + e.what() + ")");
  }
}

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
