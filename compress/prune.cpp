#include "compress/prune.hpp"

#include "compress/reduced_moe.hpp"

namespace moeforge {

PruneResult plan_prune(const Checkpoint& model, const ModelConfig& c, const Selection& sel, const Scores* scores, std::optional<DType> dtype) {
  ReduceSpec spec;
  spec.model = &model;
  spec.config = &c;
  spec.dtype = dtype;
  spec.layers.resize(static_cast<size_t>(c.n_layers));
  PruneResult r;
  for (int l = 0; l < c.n_layers; ++l) {
    if (!c.is_moe_layer(l)) continue;
    LayerCells cells{l, std::vector<ExpertCell>(static_cast<size_t>(c.n_experts))};
    for (size_t j = 0; j < sel.kept[l].size(); ++j) {
      int e = sel.kept[l][j];
      spec.layers[l].push_back({{e}, {1.0}});
      cells.experts[e].new_index = static_cast<int>(j);
    }
    for (int e = 0; e < c.n_experts; ++e) {
      auto& cell = cells.experts[e];
      cell.kept = cell.new_index >= 0;
      cell.protected_ = !sel.protected_[l].empty() && sel.protected_[l][e];
      if (scores != nullptr && !(*scores)[l].empty()) {
        cell.score = (*scores)[l][e];
        cell.has_score = true;
      }
    }
    r.cells.push_back(std::move(cells));
  }
  r.plan = plan_reduced_moe(spec);
  return r;
}

}  // namespace moeforge
