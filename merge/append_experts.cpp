#include "merge/append_experts.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "formats/convert_plan.hpp"
#include "formats/tensor_reader.hpp"
#include "merge/compatibility.hpp"
#include "merge/moe_config.hpp"
#include "merge/tensor_producers.hpp"

namespace moeforge {
namespace {

ModelConfig existing_moe(const Checkpoint& moe) {
  if (!moe.has_config()) throw FormatError(moe.label() + ": no config.json (--moe must be a Hugging Face MoE directory)");
  ModelConfig c = resolve_config(moe.config(), moe.config_path().string());
  if (!c.is_moe())
    throw UnsupportedError(moe.label() + ": --moe needs an MoE, found a dense " + std::string(c.family->model_type) +
                           " model; hint: compose dense experts with --expert only");
  const std::string type(c.family->model_type);
  for (const char* dense : {"llama", "qwen2", "qwen3"}) {
    auto allowed = allowed_moe_archs(dense);
    if (std::find(allowed.begin(), allowed.end(), type) != allowed.end()) return c;
  }
  throw UnsupportedError(moe.label() + ": experts can be appended to the MoE families compose writes (mixtral, qwen2_moe, "
                                       "qwen3_moe, olmoe), not to " + type);
}

// A new dense expert fits the MoE when it could have been one of its experts: a family that
// becomes the MoE's, the same sizes and RoPE, and every non-FFN tensor present with its shape.
void check_fits_moe(const Checkpoint& moe, const ModelConfig& m, const DenseInput& d, bool pad) {
  auto fail = [&](const std::string& what, const std::string& a, const std::string& b) {
    throw MismatchError(moe.label() + " and " + d.ckpt->label() + " do not fit together: " + what + " " + a + " vs " + b +
                        "; hint: an appended expert must be a branch of the seed the MoE's experts came from");
  };
  auto allowed = allowed_moe_archs(std::string(d.config.family->model_type));
  if (std::find(allowed.begin(), allowed.end(), std::string(m.family->model_type)) == allowed.end())
    fail("model_type", std::string(m.family->model_type), std::string(d.config.family->model_type));
  auto same = [&](const char* what, int64_t a, int64_t b) {
    if (a != b) fail(what, std::to_string(a), std::to_string(b));
  };
  same("num_hidden_layers", m.n_layers, d.config.n_layers);
  same("hidden_size", m.hidden, d.config.hidden);
  same("vocab_size", m.vocab, d.config.vocab);
  same("num_attention_heads", m.n_heads, d.config.n_heads);
  same("num_key_value_heads", m.n_kv_heads, d.config.n_kv_heads);
  same("head_dim", m.head_dim, d.config.head_dim);
  same("tie_word_embeddings", m.tie_embeddings, d.config.tie_embeddings);
  if (m.rope_theta != d.config.rope_theta) fail("rope_theta", std::to_string(m.rope_theta), std::to_string(d.config.rope_theta));
  if (d.config.intermediate > m.expert_intermediate || (!pad && d.config.intermediate != m.expert_intermediate))
    throw MismatchError(moe.label() + " and " + d.ckpt->label() + " do not fit together: expert width " + std::to_string(m.expert_intermediate) +
                        " vs FFN width " + std::to_string(d.config.intermediate) +
                        (d.config.intermediate < m.expert_intermediate ? "; hint: pass --pad-experts to zero-pad the narrower FFN" : ""));
  for (const TensorInfo* t : d.ckpt->tensors()) {
    auto cls = classify_tensor(*d.config.family, t->name);
    if (cls && cls->pattern->role == Role::kFfn) continue;
    const TensorInfo* u = moe.find_tensor(t->name);
    if (u == nullptr) throw MismatchError(where(moe.label(), t->name) + "missing, but the new expert " + d.ckpt->label() + " has it");
    if (u->shape != t->shape) fail("shape of " + t->name, shape_string(u->shape), shape_string(t->shape));
  }
}

void refuse_compose_only_options(const ComposeSpec& s) {
  auto refuse = [](bool given, const char* what) {
    if (given) throw UsageError(std::string(what) + " does not apply with --moe (the MoE's own settings are kept)");
  };
  refuse(s.shared == SharedWeights::kWeighted || !s.weights.empty(), "--shared weighted / --weights");
  refuse(s.shared_expert != nullptr, "--shared-expert");
  refuse(!s.output_arch.empty(), "--output-arch");
  refuse(s.shared_gate_from_router, "--shared-gate router");
  refuse(!s.expert_noise.empty() || !s.expert_down_scale.empty(), "--expert-noise / --expert-down-scale");
}

// The router rows of the grown MoE: fitted kinds start at zero (fit_routers fills them); the
// others keep the existing rows and add rows for the new experts from their data.
std::vector<std::shared_ptr<std::vector<double>>> router_rows(const ComposeSpec& s, const Checkpoint& moe, const ModelConfig& m,
                                                              int added, std::vector<std::string>* warnings) {
  const int total = m.n_experts + added;
  const int64_t H = m.hidden;
  std::vector<std::vector<double>> fresh;
  if (!router_is_fitted(s.router.method)) {
    RouterModels models;
    models.per_row = s.experts;
    models.base = s.base;
    models.embedding = &moe;
    if (s.router.method == RouterMethod::kHidden && s.base == nullptr) throw UsageError("--router hidden runs the base model: pass --base PATH");
    fresh = init_routers(s.router, models, added, m.n_layers, H, m.moe_layer, warnings);
  }
  std::vector<std::shared_ptr<std::vector<double>>> rows(static_cast<size_t>(m.n_layers));
  for (int l = 0; l < m.n_layers; ++l) {
    if (!m.is_moe_layer(l)) continue;
    auto r = std::make_shared<std::vector<double>>(static_cast<size_t>(total * H), 0.0);
    if (!router_is_fitted(s.router.method)) {
      std::vector<double> old = read_f64(moe.require_tensor(expand(find_pattern(*m.family, Role::kRouter)->pattern, l)));
      std::copy(old.begin(), old.end(), r->begin());
      const auto& add = fresh[static_cast<size_t>(l)];
      std::copy(add.begin(), add.end(), r->begin() + m.n_experts * H);
    }
    rows[static_cast<size_t>(l)] = r;
  }
  return rows;
}

// Expert E+i of a layer: the i-th new dense model's FFN projection, zero-padded to the MoE's width.
OutputTensor new_expert_ffn(const ComposeSpec& s, const Checkpoint& moe, const DenseInput& d, const ExpectedTensor& e) {
  const TensorInfo& src = d.ckpt->require_tensor(expand(find_pattern(*d.config.family, Role::kFfn, e.pattern->proj)->pattern, e.layer));
  const TensorInfo& like = moe.require_tensor(expand(e.pattern->pattern, e.layer, 0));
  DType dt = output_dtype(s.dtype, like.dtype);
  return src.shape == like.shape ? copy_tensor(src, e.name, dt) : zero_padded(src, e.name, dt, like.shape);
}

// --shared uniform: the MoE's tensor stands for the mean of its E experts, so it counts E times.
OutputTensor reaveraged(const ComposeSpec& s, const Checkpoint& moe, const std::vector<DenseInput>& added, const std::string& name, int E,
                        int total) {
  std::vector<const TensorInfo*> sources = {&moe.require_tensor(name)};
  std::vector<double> w = {static_cast<double>(E) / total};
  for (const auto& d : added) {
    const TensorInfo* t = d.ckpt->find_tensor(name);
    if (t == nullptr) throw MismatchError(where(d.ckpt->label(), name) + "missing, so --shared uniform cannot average it; hint: --shared keep");
    sources.push_back(t);
    w.push_back(1.0 / total);
  }
  OutputTensor t = weighted_average(sources, w, name, output_dtype(s.dtype, sources[0]->dtype));
  t.source = "mean over " + std::to_string(total) + " experts (the MoE's value counted " + std::to_string(E) + " times)";
  return t;
}

}  // namespace

Plan plan_append(const ComposeSpec& s, std::vector<LayerAccuracy>* accuracy) {
  const Checkpoint& moe = *s.moe;
  ModelConfig m = existing_moe(moe);
  if (s.experts.empty()) throw UsageError("--moe: give the dense experts to append with --expert");
  refuse_compose_only_options(s);
  if (s.shared == SharedWeights::kBase && s.base == nullptr) throw UsageError("--shared base needs --base PATH");
  if (accuracy && !router_is_fitted(s.router.method))
    throw UsageError("--report with --moe needs a fitted router (ridge, logistic) whose data covers every expert; hint: `moeforge fit-router --report`");
  std::vector<DenseInput> added;
  for (size_t i = 0; i < s.experts.size(); ++i) {
    added.push_back(dense_input(*s.experts[i], "--expert " + std::to_string(i)));
    check_fits_moe(moe, m, added.back(), s.pad_experts);
  }
  const int E = m.n_experts, total = E + static_cast<int>(added.size());

  Plan plan;
  plan.config = moe.config();
  plan.config[std::string(m.family->experts_key)] = total;
  plan.config["num_experts_per_tok"] = std::min(total, s.experts_per_token.value_or(m.top_k));
  if (!m.family->renormalize_key.empty() && s.renormalize) plan.config[std::string(m.family->renormalize_key)] = *s.renormalize;
  ModelConfig out = resolve_config(plan.config, "the grown MoE's config");

  std::vector<std::string> warnings;
  auto rows = router_rows(s, moe, m, static_cast<int>(added.size()), &warnings);
  std::vector<RouterSlot> slots;
  for (const auto& e : expected_tensors(out)) {
    const Role role = e.pattern->role;
    if (role == Role::kExpert && e.expert >= E) {
      plan.tensors.push_back(new_expert_ffn(s, moe, added[static_cast<size_t>(e.expert - E)], e));
    } else if (role == Role::kRouter) {
      const TensorInfo& old = moe.require_tensor(e.name);
      auto r = rows[static_cast<size_t>(e.layer)];
      slots.push_back({e.layer, r});
      plan.tensors.push_back(from_values(r, {total, out.hidden}, e.name, output_dtype(s.dtype, old.dtype),
                                         std::string("router: ") + router_method_name(s.router.method) +
                                             (router_is_fitted(s.router.method) ? "" : ", existing rows kept")));
    } else if (role == Role::kExpert || role == Role::kSharedExpert || role == Role::kSharedExpertGate || s.shared == SharedWeights::kKeep) {
      const TensorInfo& src = moe.require_tensor(e.name);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    } else if (s.shared == SharedWeights::kBase) {
      const TensorInfo& src = s.base->require_tensor(e.name);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, moe.require_tensor(e.name).dtype)));
    } else {
      plan.tensors.push_back(reaveraged(s, moe, added, e.name, E, total));
    }
  }
  std::set<std::string> written;
  for (const auto& t : plan.tensors) written.insert(t.name);
  for (const TensorInfo* t : moe.tensors())  // every tensor of the MoE must have a home
    if (!written.count(t->name))
      throw UnsupportedError(where(moe.label(), t->name) + "is not a tensor of a " + std::string(m.family->model_type) + " checkpoint moeforge can grow");
  set_torch_dtype(plan.config, plan);
  plan.side_files = moe.side_files();
  plan.inputs.push_back(moe.path());
  for (const auto& d : added) plan.inputs.push_back(d.ckpt->path());
  if (s.base) plan.inputs.push_back(s.base->path());
  settle_routers(plan, s, slots, one_class_per_expert(total), accuracy, &warnings);
  add_plan_notes(plan, moe.config(), warnings);
  return plan;
}

}  // namespace moeforge
