#include "merge/dense_merge.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "formats/tensor_reader.hpp"
#include "model/model_config.hpp"

namespace moeforge {
namespace {

// "model.layers.12.mlp.up_proj.weight" → prefix "model.layers.", layer 12, suffix "mlp.up_proj.weight".
bool split_layer_name(const std::string& name, std::string* prefix, int* layer, std::string* suffix) {
  for (size_t at = name.find("layers."); at != std::string::npos; at = name.find("layers.", at + 1)) {
    if (at > 0 && name[at - 1] != '.') continue;
    size_t d = at + 7, e = d;
    while (e < name.size() && std::isdigit(static_cast<unsigned char>(name[e]))) ++e;
    if (e == d || e >= name.size() || name[e] != '.' || e - d > 6) continue;
    *prefix = name.substr(0, d);
    *layer = std::stoi(name.substr(d, e - d));
    *suffix = name.substr(e + 1);
    return true;
  }
  return false;
}

struct LayerTensor {
  std::string prefix, suffix;
  std::string name(int layer) const { return prefix + std::to_string(layer) + "." + suffix; }
};

struct Layout {
  int layers = 0;
  std::map<int, std::vector<LayerTensor>> by_layer;
  std::vector<std::string> globals;  // tensors outside the decoder layers
};

Layout layout_of(const Checkpoint& c) {
  Layout l;
  int64_t configured = c.has_config() ? config_int_or(c.config(), "num_hidden_layers", -1) : -1;
  int max_layer = -1;
  for (const TensorInfo* t : c.tensors()) {
    std::string prefix, suffix;
    int layer = 0;
    if (split_layer_name(t->name, &prefix, &layer, &suffix) && (configured < 0 || layer < configured)) {
      l.by_layer[layer].push_back({prefix, suffix});
      max_layer = std::max(max_layer, layer);
    } else {
      l.globals.push_back(t->name);  // also layers past num_hidden_layers (multi-token prediction)
    }
  }
  l.layers = configured >= 0 ? static_cast<int>(configured) : max_layer + 1;
  return l;
}

bool is_float(DType d) { return dtype_info(d).is_float && d != DType::kF8E4M3 && d != DType::kF8E5M2; }

// torch's type promotion of the stacked inputs (methods without a base).
DType promoted(const std::vector<const TensorInfo*>& in) {
  bool f64 = false, f32 = false, bf16 = false, f16 = false;
  for (const auto* t : in) {
    f64 = f64 || t->dtype == DType::kF64;
    f32 = f32 || t->dtype == DType::kF32;
    bf16 = bf16 || t->dtype == DType::kBF16;
    f16 = f16 || t->dtype == DType::kF16;
  }
  if (f64) return DType::kF64;
  if (f32 || (bf16 && f16)) return DType::kF32;
  return bf16 ? DType::kBF16 : f16 ? DType::kF16 : DType::kF32;
}

bool is_embed_name(const Family* family, const std::string& name) {
  if (family)
    if (auto e = classify_tensor(*family, name)) return e->pattern->role == Role::kEmbedding || e->pattern->role == Role::kLmHead;
  for (const char* s : {"embed_tokens.weight", "lm_head.weight", "wte.weight", "embed_in.weight", "embed_out.weight"})
    if (name.ends_with(s)) return true;
  return false;
}

// Embeddings come before the layers (first slice); everything else outside them after (last slice).
bool is_pre(const std::string& name) { return name.find("embed") != std::string::npos && name.find("lm_head") == std::string::npos; }

const Family* donor_family(const MergeConfig& c, const std::vector<const Checkpoint*>& models) {
  const Checkpoint& donor = *models[static_cast<size_t>(c.donor())];
  return donor.has_config() ? family_for_config(donor.config()) : nullptr;
}

// Which tensors the output holds and where each input comes from (MergePlanner.plan_module).
class Layouter {
 public:
  Layouter(const MergeConfig& c, const std::vector<const Checkpoint*>& models) : c_(c) {
    if (models.size() != c.models.size()) throw Error(ExitCode::kInternal, "dense merge: one checkpoint per model expected");
    for (const auto* m : models) layouts_.push_back(layout_of(*m));
  }

  std::vector<MergedTensorPlan> run() {
    const Layout& donor = layout(c_.donor());
    for (const auto& g : donor.globals)
      if (is_pre(g)) add_global(g, c_.slices.front(), c_.slices.front().sources.size());
    int out_layer = 0;
    for (const auto& s : c_.slices) {
      auto first = range(s, s.sources[0]);
      for (const auto& src : s.sources) range(s, src);
      const int64_t n = first.second - first.first;
      for (int64_t i = 0; i < n; ++i, ++out_layer) {
        double t = n > 1 ? static_cast<double>(i) / static_cast<double>(n - 1) : 1.0;
        int in_layer = static_cast<int>(first.first + i);
        const auto& by_layer = layout(s.sources[0].model).by_layer;
        auto it = by_layer.find(in_layer);
        if (it == by_layer.end()) throw FormatError(label(s.sources[0].model) + ": no tensors of layer " + std::to_string(in_layer));
        for (const auto& lt : it->second) {
          MergedTensorPlan p{.name = lt.name(out_layer), .slice = &s, .t = t, .layer = out_layer};
          for (const auto& src : s.sources) {
            p.models.push_back(src.model);
            p.inputs.push_back(lt.name(static_cast<int>(range(s, src).first + i)));
          }
          out_.push_back(std::move(p));
        }
      }
    }
    // mergekit pairs the last slice's sources with the first slice's count (extra sources are dropped).
    size_t post = std::min(c_.slices.back().sources.size(), c_.slices.front().sources.size());
    for (const auto& g : donor.globals)
      if (!is_pre(g)) add_global(g, c_.slices.back(), post);
    for (auto& p : out_) {
      SliceDef used = *p.slice;
      used.sources.resize(p.models.size());
      p.params = resolve_parameters(c_, used, p.name, p.inputs, p.t);
    }
    return std::move(out_);
  }

 private:
  const Layout& layout(int id) const { return layouts_[static_cast<size_t>(id)]; }
  std::string label(int id) const { return c_.models[static_cast<size_t>(id)]; }

  void add_global(const std::string& name, const SliceDef& s, size_t sources) {
    MergedTensorPlan p{.name = name, .slice = &s};
    for (size_t k = 0; k < sources; ++k) {
      p.models.push_back(s.sources[k].model);
      p.inputs.push_back(name);
    }
    out_.push_back(std::move(p));
  }

  // The models: form takes every layer, and all models must have as many.
  std::pair<int64_t, int64_t> range(const SliceDef& s, const SourceDef& src) const {
    int n = layout(src.model).layers;
    if (!src.layer_range) {
      int first = layout(s.sources[0].model).layers;
      if (n != first)
        throw MismatchError(c_.context + ": models: all models must have the same number of layers (" + label(s.sources[0].model) + ": " +
                            std::to_string(first) + ", " + label(src.model) + ": " + std::to_string(n) + ")");
      return {0, n};
    }
    if (src.layer_range->second > n)
      throw UsageError(c_.context + ": " + src.where + ".layer_range: [" + std::to_string(src.layer_range->first) + ", " +
                       std::to_string(src.layer_range->second) + "] is past the " + std::to_string(n) + " layers of " + label(src.model));
    return *src.layer_range;
  }

  const MergeConfig& c_;
  std::vector<Layout> layouts_;
  std::vector<MergedTensorPlan> out_;
};

// Turns the planned tensors into output tensors, the output config and the side files.
class Builder {
 public:
  Builder(const MergeConfig& c, const std::vector<const Checkpoint*>& models, const DenseMergeOptions& o)
      : c_(c), models_(models), o_(o), family_(donor_family(c, models)) {}

  Plan run() {
    std::vector<MergedTensorPlan> planned = plan_merge_tensors(c_, models_);
    Plan plan;
    std::vector<std::string> names;
    std::vector<std::pair<int, int>> layer_origin;  // output layer → (model, input layer) of the first source
    for (const auto& p : planned) {
      plan.tensors.push_back(tensor(p, plan));
      names.push_back(p.name);
      names.insert(names.end(), p.inputs.begin(), p.inputs.end());
      std::string prefix, suffix;
      int in_layer = 0;
      if (p.layer >= static_cast<int>(layer_origin.size()) && split_layer_name(p.inputs[0], &prefix, &in_layer, &suffix))
        layer_origin.push_back({p.models[0], in_layer});
    }
    for (const auto& w : unmatched_filters(c_, names)) plan.notes.push_back("warning: " + w);
    // mergekit refuses models of different architectures unless --allow-crimes; moeforge merges
    // whatever has matching tensor names and shapes, and says so.
    std::set<std::string> types;
    for (const auto* m : models_)
      if (m->has_config() && m->config().contains("model_type")) types.insert(m->config()["model_type"].dump());
    if (types.size() > 1) plan.notes.push_back("warning: the models are of different families (" + join(std::vector<std::string>(types.begin(), types.end()), ", ") + ")");
    plan.config = output_config(plan, layer_origin);
    int tokenizer = c_.tokenizer == TokenizerSource::kDonor ? c_.donor() : c_.tokenizer_model;
    if (c_.tokenizer != TokenizerSource::kDonor) check_shared_vocabulary(tokenizer, plan);
    for (const auto& f : model(tokenizer).side_files()) plan.side_files.push_back(f);
    for (const auto& m : c_.models) plan.inputs.push_back(m);
    return plan;
  }

 private:
  const Checkpoint& model(int id) const { return *models_[static_cast<size_t>(id)]; }
  std::string label(int id) const { return c_.models[static_cast<size_t>(id)]; }

  const TensorInfo& input(int id, const std::string& name, const std::string& out) const {
    if (const TensorInfo* t = model(id).find_tensor(name)) return *t;
    // A model with tied embeddings stores no lm_head: its embedding matrix stands in (mergekit tied_names).
    if (name.ends_with("lm_head.weight") && family_)
      if (const TensorPattern* e = find_pattern(*family_, Role::kEmbedding))
        if (const TensorInfo* t = model(id).find_tensor(std::string(e->pattern))) return *t;
    throw MismatchError(where(label(id), name) + "missing (needed for output tensor '" + out + "')");
  }

  OutputTensor tensor(const MergedTensorPlan& p, Plan& plan) {
    std::vector<const TensorInfo*> in;
    std::vector<Shape> shapes;
    std::vector<std::string> labels;
    for (size_t k = 0; k < p.models.size(); ++k) {
      in.push_back(&input(p.models[k], p.inputs[k], p.name));
      shapes.push_back(in.back()->shape);
      labels.push_back(label(p.models[k]));
    }
    for (const auto* t : in)
      if (!is_float(t->dtype)) {
        plan.notes.push_back("tensor '" + p.name + "' is " + std::string(dtype_name(t->dtype)) + ": copied from " + labels[0]);
        return copy_tensor(*in[0], p.name, in[0]->dtype);
      }
    int base = -1;
    auto base_model = c_.base_of(*p.slice);
    if (base_model && c_.method->base != BaseRule::kAsInput)
      for (size_t k = 0; k < p.models.size() && base < 0; ++k)
        if (p.models[k] == *base_model) base = static_cast<int>(k);
    TensorMergeSpec spec;
    spec.method = c_.method;
    spec.name = p.name;
    spec.shape = merged_shape(*c_.method, shapes, base, is_embed_name(family_, p.name), p.name, labels);
    for (const auto* t : in) spec.inputs.push_back(tensor_rows(*t, spec.shape, c_.dtype));
    spec.labels = labels;
    spec.base = base;
    spec.global = p.params.global;
    spec.per_model = p.params.per_input;
    spec.masks = o_.masks ? o_.masks : seeded_masks(o_.seed, p.name);
    DType out = o_.dtype       ? *o_.dtype
                : c_.out_dtype ? *c_.out_dtype
                : c_.dtype     ? *c_.dtype
                : base >= 0    ? in[static_cast<size_t>(base)]->dtype
                               : promoted(in);
    if (is_pre(p.name) && is_embed_name(family_, p.name)) embed_rows_ = spec.shape.empty() ? 0 : spec.shape[0];
    std::string source = c_.method->name + " of " + std::to_string(in.size()) + (in.size() == 1 ? " input" : " inputs");
    if (p.layer >= 0) source += " (t=" + std::to_string(p.t).substr(0, 5) + ")";
    Shape shape = spec.shape;
    return merged_tensor(make_tensor_merger(std::move(spec)), p.name, shape, out, source);
  }

  nlohmann::json output_config(Plan& plan, const std::vector<std::pair<int, int>>& layer_origin) const {
    const Checkpoint& donor = model(c_.donor());
    nlohmann::json cfg = donor.has_config() ? donor.config() : nlohmann::json();
    if (cfg.is_null()) return cfg;
    if (c_.uses_slices) {
      cfg["num_hidden_layers"] = static_cast<int64_t>(layer_origin.size());
      // Per-layer lists (layer_types) follow their layers.
      if (cfg.contains("layer_types") && cfg["layer_types"].is_array() && !cfg["layer_types"].empty()) {
        nlohmann::json types = nlohmann::json::array();
        for (const auto& [m, l] : layer_origin) {
          const auto& src = model(m).config();
          bool has = src.contains("layer_types") && src["layer_types"].is_array() && src["layer_types"].size() > static_cast<size_t>(l);
          types.push_back(has ? src["layer_types"][static_cast<size_t>(l)] : cfg["layer_types"][0]);
        }
        cfg["layer_types"] = types;
      }
    }
    std::optional<DType> torch = o_.dtype ? o_.dtype : c_.out_dtype ? c_.out_dtype : c_.dtype;
    if (torch) cfg["torch_dtype"] = std::string(dtype_info(*torch).torch_name);
    if (embed_rows_ > 0 && cfg.contains("vocab_size") && cfg["vocab_size"].is_number_integer() && cfg["vocab_size"].get<int64_t>() != embed_rows_) {
      plan.notes.push_back("vocab_size " + cfg["vocab_size"].dump() + " → " + std::to_string(embed_rows_) + " (the merged embedding's rows)");
      cfg["vocab_size"] = embed_rows_;
    }
    if (c_.uses_slices) check_moe_layers(cfg, plan);
    return cfg;
  }

  std::optional<nlohmann::json> vocabulary(int id) const {
    for (const auto& f : model(id).side_files())
      if (f.filename() == "tokenizer.json") {
        nlohmann::json t = read_json_file(f);
        return nlohmann::json{{"vocab", t.contains("model") ? t["model"].value("vocab", nlohmann::json()) : nlohmann::json()},
                              {"added", t.value("added_tokens", nlohmann::json())}};
      }
    return std::nullopt;
  }

  // mergekit permutes every model's embedding rows into the chosen tokenizer's vocabulary;
  // moeforge merges rows as they are, so the models must share that vocabulary.
  void check_shared_vocabulary(int tokenizer, Plan& plan) const {
    auto target = vocabulary(tokenizer);
    if (!target) {
      plan.notes.push_back("tokenizer_source: " + label(tokenizer) + " has no tokenizer.json; vocabularies not compared");
      return;
    }
    for (int id = 0; id < static_cast<int>(c_.models.size()); ++id) {
      auto v = vocabulary(id);
      if (!v) plan.notes.push_back("tokenizer_source: " + label(id) + " has no tokenizer.json; its vocabulary is not compared");
      else if (*v != *target)
        throw UnsupportedError(c_.context + ": tokenizer_source: the vocabulary of " + label(id) + " differs from " + label(tokenizer) +
                               "'s; mergekit would permute its embedding rows into that vocabulary, which moeforge does not do: merge models "
                               "that share a tokenizer");
    }
  }

  // A frankenmerge must put MoE layers where the output config expects them.
  void check_moe_layers(const nlohmann::json& cfg, const Plan& plan) const {
    if (!family_ || !family_->moe) return;
    ModelConfig mc = resolve_config(cfg, "the merged config");
    std::set<int> has_experts;
    for (const auto& t : plan.tensors) {
      std::string prefix, suffix;
      int layer = 0;
      if (split_layer_name(t.name, &prefix, &layer, &suffix) && suffix.find("experts.") != std::string::npos) has_experts.insert(layer);
    }
    for (int l = 0; l < static_cast<int>(mc.moe_layer.size()); ++l)
      if (mc.is_moe_layer(l) != (has_experts.count(l) > 0))
        throw UsageError(c_.context + ": slices: output layer " + std::to_string(l) + " comes from " + (has_experts.count(l) ? "an MoE" : "a dense") +
                         " layer, but the donor's config makes it " + (mc.is_moe_layer(l) ? "MoE" : "dense") +
                         "; hint: keep MoE and dense layers where the config's layer rule puts them");
  }

  const MergeConfig& c_;
  const std::vector<const Checkpoint*>& models_;
  DenseMergeOptions o_;
  const Family* family_;
  int64_t embed_rows_ = 0;
};

}  // namespace

Shape merged_shape(const MergeMethodInfo& method, const std::vector<Shape>& shapes, int base, bool embed, const std::string& tensor,
                   const std::vector<std::string>& labels) {
  bool equal = std::all_of(shapes.begin(), shapes.end(), [&](const Shape& s) { return s == shapes[0]; });
  if (equal) return shapes[0];
  bool all_2d = std::all_of(shapes.begin(), shapes.end(), [](const Shape& s) { return s.size() == 2; });
  size_t other = 0;
  while (other < shapes.size() && shapes[other] == shapes[0]) ++other;
  if (!embed || !all_2d)
    throw MismatchError("tensor '" + tensor + "': shapes differ: " + shape_string(shapes[0]) + " in " + labels[0] + ", " + shape_string(shapes[other]) +
                        " in " + labels[other]);
  if (method.gta && base >= 0) {
    const Shape& b = shapes[static_cast<size_t>(base)];
    for (size_t i = 0; i < shapes.size(); ++i)
      if (shapes[i][0] < b[0] || shapes[i][1] < b[1])
        throw MismatchError("tensor '" + tensor + "': " + shape_string(shapes[i]) + " in " + labels[i] + " is smaller than base_model's " + shape_string(b) +
                            " in " + labels[static_cast<size_t>(base)] + "; task vectors need at least the base's size");
    return b;
  }
  Shape s = shapes[0];
  for (const auto& x : shapes) s = {std::min(s[0], x[0]), std::min(s[1], x[1])};
  return s;
}

RowReader tensor_rows(const TensorInfo& t, const Shape& shape, std::optional<DType> cast) {
  const TensorInfo* src = &t;
  const int64_t in_cols = t.cols();
  const int64_t rows = shape.size() < 2 ? 1 : shape[0];
  const int64_t out_cols = rows == 0 ? 0 : shape_numel(shape) / rows;
  const bool crop = out_cols != in_cols;
  const bool round = cast && *cast != DType::kF32 && *cast != t.dtype;
  const DType to = cast.value_or(DType::kF32);
  return [src, in_cols, out_cols, crop, round, to](int64_t r0, int64_t r1, float* dst) {
    size_t n = static_cast<size_t>((r1 - r0) * out_cols);
    if (!crop) {
      read_rows_f32(*src, r0, r1, dst);
    } else {
      thread_local std::vector<float> wide;
      wide.resize(static_cast<size_t>((r1 - r0) * in_cols));
      read_rows_f32(*src, r0, r1, wide.data());
      for (int64_t r = 0; r < r1 - r0; ++r) std::copy_n(wide.data() + r * in_cols, out_cols, dst + r * out_cols);
    }
    if (round)
      for (size_t i = 0; i < n; ++i) dst[i] = to == DType::kBF16 ? bf16_to_f32(f32_to_bf16(dst[i])) : f16_to_f32(f32_to_f16(dst[i]));
  };
}

std::vector<MergedTensorPlan> plan_merge_tensors(const MergeConfig& config, const std::vector<const Checkpoint*>& models) {
  return Layouter(config, models).run();
}

Plan plan_dense_merge(const MergeConfig& config, const std::vector<const Checkpoint*>& models, const DenseMergeOptions& options) {
  return Builder(config, models, options).run();
}

}  // namespace moeforge
