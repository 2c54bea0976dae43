// Maximum-weight perfect matching on a dense n × n score matrix (the linear assignment problem),
// by the Hungarian method with potentials, O(n³). Returns col[r] = column assigned to row r.
#pragma once
#include <vector>

#include "engine/matrix.hpp"

namespace moeforge {

std::vector<int> max_weight_assignment(const MatD& score);

}  // namespace moeforge
