#include "merge/compatibility.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/log.hpp"
#include "model/inspection.hpp"

namespace moeforge {
namespace {

[[noreturn]] void mismatch(const DenseInput& a, const DenseInput& b, const std::string& what, const std::string& va, const std::string& vb,
                           const std::string& hint) {
  throw MismatchError(a.ckpt->label() + " and " + b.ckpt->label() + " do not fit together: " + what + " " + va + " vs " + vb + "; hint: " + hint);
}

std::string str(double v) { return nlohmann::json(v).dump(); }

}  // namespace

DenseInput dense_input(const Checkpoint& ckpt, const std::string& role) {
  if (!ckpt.has_config()) throw FormatError(ckpt.label() + ": no config.json (" + role + " must be a Hugging Face model directory)");
  DenseInput in{&ckpt, resolve_config(ckpt.config(), ckpt.config_path().string())};
  if (in.config.family->moe)
    throw UnsupportedError(ckpt.label() + ": " + role + " is a " + std::string(in.config.family->model_type) +
                           " MoE; compose and upcycle take dense llama, mistral, qwen2 or qwen3 models");
  require_consistent_structure(ckpt, in.config);
  return in;
}

void check_fit(const DenseInput& a, const DenseInput& b, bool allow_width) {
  const ModelConfig &x = a.config, &y = b.config;
  auto same = [&](const char* what, int64_t va, int64_t vb, const char* hint) {
    if (va != vb) mismatch(a, b, what, std::to_string(va), std::to_string(vb), hint);
  };
  if (x.family != y.family)
    mismatch(a, b, "model_type", std::string(x.family->model_type), std::string(y.family->model_type), "experts must share one architecture");
  const char* branch = "BTX experts are branches of one seed model";
  same("num_hidden_layers", x.n_layers, y.n_layers, branch);
  same("hidden_size", x.hidden, y.hidden, branch);
  same("vocab_size", x.vocab, y.vocab, "experts need the same tokenizer");
  same("num_attention_heads", x.n_heads, y.n_heads, branch);
  same("num_key_value_heads", x.n_kv_heads, y.n_kv_heads, branch);
  same("head_dim", x.head_dim, y.head_dim, branch);
  same("tie_word_embeddings", x.tie_embeddings, y.tie_embeddings, branch);
  same("attention_bias", x.attention_bias, y.attention_bias, branch);
  if (x.rope_theta != y.rope_theta) mismatch(a, b, "rope_theta", str(x.rope_theta), str(y.rope_theta), branch);
  if (x.rope_scaling != y.rope_scaling) mismatch(a, b, "rope_scaling", x.rope_scaling.dump(), y.rope_scaling.dump(), branch);
  if (x.sliding_window != y.sliding_window) mismatch(a, b, "sliding_window", "per-layer windows", "different windows", branch);
  if (x.rms_norm_eps != y.rms_norm_eps)
    warn(a.ckpt->label() + " and " + b.ckpt->label() + " differ in rms_norm_eps (" + str(x.rms_norm_eps) + " vs " + str(y.rms_norm_eps) +
         "); the first one is used");
  if (!allow_width && x.intermediate != y.intermediate)
    mismatch(a, b, "intermediate_size (FFN width)", std::to_string(x.intermediate), std::to_string(y.intermediate),
             "pass --pad-experts to zero-pad narrower FFNs (exact for SwiGLU)");
  for (const TensorInfo* t : a.ckpt->tensors()) {
    auto cls = classify_tensor(*x.family, t->name);
    if (cls && cls->pattern->role == Role::kFfn) continue;
    const TensorInfo* u = b.ckpt->find_tensor(t->name);
    if (u == nullptr) throw MismatchError(where(b.ckpt->label(), t->name) + "missing, but " + a.ckpt->label() + " has it; hint: " + branch);
    if (u->shape != t->shape)
      mismatch(a, b, "shape of " + t->name, shape_string(t->shape), shape_string(u->shape), branch);
  }
}

}  // namespace moeforge
