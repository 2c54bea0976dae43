#include "merge/upcycle.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "formats/convert_plan.hpp"
#include "merge/compatibility.hpp"
#include "merge/moe_config.hpp"
#include "merge/tensor_producers.hpp"

namespace moeforge {

Plan plan_upcycle(const UpcycleSpec& s) {
  DenseInput in = dense_input(*s.model, "MODEL");
  const ModelConfig& dense = in.config;
  if (s.copies < 1) throw UsageError("--experts must be at least 1");
  if (s.granularity < 1 || dense.intermediate % s.granularity != 0)
    throw UsageError("--granularity " + std::to_string(s.granularity) + " must divide the FFN width " + std::to_string(dense.intermediate));
  std::string arch = s.output_arch.empty() ? default_moe_arch(std::string(dense.family->model_type)) : s.output_arch;
  const Family& target = require_family(arch, "--output-arch: ");
  const int m = s.granularity;
  if (static_cast<int64_t>(s.copies) * m > kMaxUpcycledExperts)
    throw UsageError("--experts " + std::to_string(s.copies) + " × --granularity " + std::to_string(m) + " = " +
                     std::to_string(static_cast<int64_t>(s.copies) * m) + " experts per layer, more than the " +
                     std::to_string(kMaxUpcycledExperts) + " any runtime loads");
  uint64_t ffn_bytes = 0, all_bytes = 0;
  for (const TensorInfo* t : s.model->tensors()) {
    uint64_t b = static_cast<uint64_t>(t->numel()) * dtype_size(output_dtype(s.dtype, t->dtype));
    all_bytes += b;
    auto cls = classify_tensor(*dense.family, t->name);
    if (cls && cls->pattern->role == Role::kFfn) ffn_bytes += b;
  }
  // Computed in long double: copies × FFN bytes may pass 2^64 for absurd requests.
  long double needed = static_cast<long double>(all_bytes) + static_cast<long double>(ffn_bytes) * (s.copies - 1);
  if (needed > static_cast<long double>(s.free_bytes))
    throw IoError("upcycling " + s.model->label() + " into " + std::to_string(s.copies) + " copies needs about " +
                  format_bytes(static_cast<uint64_t>(std::min(needed, 1.8e19L))) + " of output, more than the " +
                  format_bytes(s.free_bytes) + " free where it goes; hint: fewer --experts");
  MoeShape shape;
  shape.experts = s.copies * m;
  shape.experts_per_token = std::min(s.experts_per_token, s.copies) * m;
  shape.expert_width = dense.intermediate / m;
  bool shared = !target.shared_ffn_key.empty();
  shape.shared_width = shared ? dense.intermediate : 0;
  Plan plan;
  plan.config = moe_config(s.model->config(), target, shape, s.model->label());
  ModelConfig out = resolve_config(plan.config, "the upcycled config");

  std::vector<std::string> warnings;
  RouterModels models;
  models.per_row.assign(static_cast<size_t>(s.copies), s.model);
  models.base = s.model;
  models.embedding = s.model;
  auto copy_rows = init_routers(s.router, models, s.copies, out.n_layers, out.hidden, out.moe_layer, &warnings);

  const Family& f = *dense.family;
  auto ffn = [&](int layer, Proj p) -> const TensorInfo& { return s.model->require_tensor(expand(find_pattern(f, Role::kFfn, p)->pattern, layer)); };
  // Routed outputs sum to the dense FFN: × m undoes the split, × 1/2 leaves room for the shared expert.
  const double down_scale = m * (shared ? 0.5 : 1.0);
  const int64_t width = shape.expert_width;
  DType fresh = s.dtype ? *s.dtype : ffn(0, Proj::kGate).dtype;
  for (const auto& e : expected_tensors(out)) {
    Role role = e.pattern->role;
    if (role == Role::kExpert) {
      const TensorInfo& src = ffn(e.layer, e.pattern->proj);
      int part = e.expert % m;
      DType dt = output_dtype(s.dtype, src.dtype);
      DType made = s.noise > 0 ? DType::kF32 : dt;  // noise is added in float32, then rounded once
      double scale = e.pattern->proj == Proj::kDown ? down_scale : 1.0;
      OutputTensor t = m == 1 ? scaled(src, scale, e.name, made)
                       : e.pattern->proj == Proj::kDown ? col_slice(src, part * width, (part + 1) * width, scale, e.name, made)
                                                        : row_slice(src, part * width, (part + 1) * width, scale, e.name, made);
      plan.tensors.push_back(s.noise > 0 ? with_noise(std::move(t), dt, s.noise, s.seed) : std::move(t));
    } else if (role == Role::kRouter) {
      const auto& rows = copy_rows[static_cast<size_t>(e.layer)];
      auto values = std::make_shared<std::vector<double>>();
      for (int x = 0; x < shape.experts; ++x)  // virtual groups: the m parts of a copy share its row
        values->insert(values->end(), rows.begin() + (x / m) * out.hidden, rows.begin() + (x / m + 1) * out.hidden);
      plan.tensors.push_back(from_values(values, {shape.experts, out.hidden}, e.name, fresh,
                                         std::string("router: ") + router_method_name(s.router.method) + (m > 1 ? ", one row per copy" : "")));
    } else if (role == Role::kSharedExpert) {
      const TensorInfo& src = ffn(e.layer, e.pattern->proj);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    } else if (role == Role::kSharedExpertGate) {
      plan.tensors.push_back(filled(0.0, {1, out.hidden}, e.name, fresh, "zeros: sigmoid(0) = 1/2"));
    } else if (role == Role::kQkNorm && s.model->find_tensor(e.name) == nullptr) {
      throw UnsupportedError(arch + " normalises q and k, which " + s.model->label() + " does not: upcycling would change the model");
    } else {
      const TensorInfo& src = s.model->require_tensor(e.name);
      plan.tensors.push_back(copy_tensor(src, e.name, output_dtype(s.dtype, src.dtype)));
    }
  }
  set_torch_dtype(plan.config, plan);
  plan.side_files = s.model->side_files();
  plan.inputs.push_back(s.model->path());
  add_plan_notes(plan, s.model->config(), warnings);
  return plan;
}

}  // namespace moeforge
