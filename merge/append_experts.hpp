// Appending dense experts to an existing MoE (compose --moe EXISTING --expert NEW ...; mergekit
// issue 171, Nexus-style growth): in every MoE layer expert E+i is the i-th new dense model's FFN
// (zero-padded with --pad-experts). The existing experts, the qwen2_moe shared expert and its gate
// and every other tensor are copied bit for bit; shared weights are re-averaged only with
// --shared uniform (the MoE's weights stand for the mean of its E experts, so the result is the
// mean over all E+k) or copied from --base with --shared base. Routers: the fitted kinds (ridge,
// logistic) re-fit every row from data for all E+k experts, in expert order; the other kinds keep
// the existing rows bit for bit and initialise the new rows from the new experts' data only.
#pragma once
#include "merge/compose.hpp"

namespace moeforge {

Plan plan_append(const ComposeSpec& spec, std::vector<LayerAccuracy>* accuracy);

}  // namespace moeforge
