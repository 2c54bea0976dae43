// The order in which transformers registers a model's modules (embeddings, then each layer's
// attention, MLP/experts and norms, then the final norm and lm_head). save_pretrained fills
// shards in this order, so the writer uses it to assign tensors to shards the same way.
#pragma once
#include <string_view>

namespace moeforge {

bool module_order_less(std::string_view a, std::string_view b);

}  // namespace moeforge
