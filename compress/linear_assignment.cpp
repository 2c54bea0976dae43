#include "compress/linear_assignment.hpp"

#include <limits>

namespace moeforge {

std::vector<int> max_weight_assignment(const MatD& score) {
  // Minimises cost = −score with row/column potentials u, v; rows are added one at a time and
  // joined by a shortest augmenting path (1-based arrays, column 0 is a sentinel).
  const int n = static_cast<int>(score.rows());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0), dist(n + 1);
  std::vector<int> row_of(n + 1, 0), way(n + 1, 0);
  std::vector<char> used(n + 1);
  for (int r = 1; r <= n; ++r) {
    row_of[0] = r;
    int col = 0;
    std::fill(dist.begin(), dist.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[col] = 1;
      int row = row_of[col], next = 0;
      double delta = inf;
      for (int c = 1; c <= n; ++c) {
        if (used[c]) continue;
        double reduced = -score(row - 1, c - 1) - u[row] - v[c];
        if (reduced < dist[c]) {
          dist[c] = reduced;
          way[c] = col;
        }
        if (dist[c] < delta) {
          delta = dist[c];
          next = c;
        }
      }
      for (int c = 0; c <= n; ++c) {
        if (used[c]) {
          u[row_of[c]] += delta;
          v[c] -= delta;
        } else {
          dist[c] -= delta;
        }
      }
      col = next;
    } while (row_of[col] != 0);
    do {
      int prev = way[col];
      row_of[col] = row_of[prev];
      col = prev;
    } while (col != 0);
  }
  std::vector<int> assignment(static_cast<size_t>(n));
  for (int c = 1; c <= n; ++c) assignment[static_cast<size_t>(row_of[c] - 1)] = c - 1;
  return assignment;
}

}  // namespace moeforge
