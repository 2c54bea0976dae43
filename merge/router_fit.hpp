// Routers fitted in closed form from each expert's data. The features x are the router's input
// (layer l's post-attention-norm hidden state), the label of a token is the expert whose data it
// comes from, and all numerics are float64.
//   ridge     (DUME) A = Σ x xᵀ, B = Σ x yᵀ with y the one-hot label (so B's column e is the sum of
//             x over expert e's tokens); W = (A + λI)⁻¹ B; router row e = W[:, e] / ‖W[:, e]‖ × scale.
//   logistic  multinomial logistic regression: W minimises Σ −log softmax(W x)_label + λ/2 ‖W‖²,
//             by L-BFGS from W = 0 (deterministic: fixed blocks summed in order); row e = W[e] × scale,
//             so with scale 1 the router's logits are the fitted ones.
// λ is relative: λ = lambda × trace(A) / H, the mean eigenvalue of A times lambda, so the same
// value means the same amount of shrinkage whatever the scale of the hidden states or the number
// of tokens. No intercept is fitted: the router has no bias. The RMS-normalised router input has
// a large component common to all tokens (its mean), which acts as the constant feature an
// intercept would use; softmax ignores a constant added to every logit, so only the differences
// between experts' intercepts matter, and those are carried along that direction.
// Ridge is additive (A, the per-expert sums and counts add over any split of the data); logistic
// regression has no finite sufficient statistics, so it needs the router inputs themselves.
#pragma once
#include <string>
#include <vector>

#include "engine/calibration_stats.hpp"

namespace moeforge {

struct RidgeStats {
  MatD gram;       // [H, H] Σ x xᵀ
  MatD class_sum;  // [E, H] Σ x over each expert's tokens
  VecD count;      // [E] tokens per expert

  void init(int classes, int64_t hidden);
  // Adds n rows of X [n, H] with their labels (0..E−1); the result does not depend on the thread count.
  void add(const float* X, int64_t n, const int32_t* labels);
  void merge(const RidgeStats& other);
  int64_t hidden() const { return gram.rows(); }
  int classes() const { return static_cast<int>(count.size()); }
};

struct FitOptions {
  double lambda = 1e-2;  // relative to trace(A) / H; must be > 0
  double scale = 1.0;    // factor on every router row
  int max_iterations = 1000;  // logistic
};

// λ in absolute terms for a Gram matrix with this trace.
double absolute_lambda(double lambda, double gram_trace, int64_t hidden);

// The unnormalised ridge solution, transposed: row e = W[:, e]. A singular or nearly singular
// system adds a warning naming `what` (the layer) and is solved in the least-squares sense.
MatD ridge_solution(const RidgeStats& s, double lambda, const std::string& what, std::vector<std::string>* warnings);
// Router rows [E, H]: the ridge solution's rows normalised, times the scale.
MatD ridge_router(const RidgeStats& s, const FitOptions& o, const std::string& what, std::vector<std::string>* warnings);

// Router rows [E, H] of the multinomial logistic regression on X [n, H] (float32 rows) and labels.
MatD logistic_router(const float* X, int64_t n, int64_t hidden, const int32_t* labels, int classes, const FitOptions& o,
                     const std::string& what, std::vector<std::string>* warnings);

// Fails with a message naming `what` when some expert has no tokens.
void check_every_class_seen(const VecD& count, const std::string& what);

}  // namespace moeforge
