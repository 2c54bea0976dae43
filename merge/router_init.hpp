// Router initialisation for composed and upcycled MoEs. Row e of layer l's router is:
//   random    N(0, std²), seeded (same seed → same bytes)
//   zero      0 (uniform routing; top-k ties go to the lowest expert indices)
//   embed     the normalised mean token embedding of expert e's data (every layer alike)
//   hidden    the normalised mean over expert e's data of the router's actual input (the
//             post_attention_layernorm output of layer l) in the base model
//   centroid  the same, computed in expert e's own dense model (Branch-Train-MiX domain centroids)
// For embed/hidden/centroid, the mean over negative data is subtracted before normalising. Means
// are accumulated and normalised in float64. mergekit-moe's gate modes, for its configs:
//   mergekit-hidden  the residual stream entering layer l at the last token of each prompt (one
//                    window per prompt) in the base model, averaged over prompts, negative mean
//                    subtracted, normalised (mergekit computes it in bfloat16; this in float32)
//   cheap-embed      the normalised sum of the prompts' token embeddings, every layer alike; with
//                    negatives, normalise(pos) − normalise(neg), normalised again
//   uniform-random   U(−1/√hidden, 1/√hidden), seeded
// and fitted from each expert's data in the MoE being built (router_fit.hpp, router_fit_pass.hpp):
//   ridge            DUME ridge regression of the expert labels on the router input
//   logistic         multinomial logistic regression on the same
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/checkpoint.hpp"
#include "merge/router_fit.hpp"
#include "text/token_data.hpp"

namespace moeforge {

enum class RouterMethod { kRandom, kZero, kEmbed, kHidden, kCentroid, kMergekitHidden, kCheapEmbed, kUniformRandom, kRidge, kLogistic };
RouterMethod parse_router_method(const std::string& name);
const char* router_method_name(RouterMethod m);
bool router_needs_data(RouterMethod m);
// Ridge and logistic: fitted by running the MoE being built (fit_routers), not by init_routers.
bool router_is_fitted(RouterMethod m);

struct RouterInit {
  RouterMethod method = RouterMethod::kRandom;
  double std = 0.02;
  uint64_t seed = 0;
  int threads = 0;
  std::vector<DataFile> positive;  // one per routed row (embed/hidden/centroid)
  std::vector<DataFile> negative;  // none, one for all rows, or one per row
  FitOptions fit;                  // ridge / logistic: λ and the row scale
};

struct RouterModels {
  std::vector<const Checkpoint*> per_row;  // centroid: the dense model of each row
  const Checkpoint* base = nullptr;        // hidden: the model whose hidden states are used
  const Checkpoint* embedding = nullptr;   // embed: where model.embed_tokens.weight comes from
};

// rows[l] holds the [rows × hidden] router of layer l (row-major), empty for dense layers. Fitted
// methods get zeros here: fit_routers fills them.
std::vector<std::vector<double>> init_routers(const RouterInit& init, const RouterModels& models, int rows, int n_layers,
                                              int64_t hidden, const std::vector<bool>& moe_layer, std::vector<std::string>* warnings);

// Condition number (largest / smallest singular value) of a rows × hidden matrix.
double condition_number(const std::vector<double>& matrix, int rows, int64_t hidden);

}  // namespace moeforge
