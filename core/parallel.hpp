// parallel_for over independent work items on a fixed number of threads. Items write to
// disjoint places, so results do not depend on the thread count. The first exception stops the
// remaining items and is rethrown in the caller.
#pragma once
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moeforge {

int default_threads();
// 0 means "all cores".
inline int resolve_threads(int requested) { return requested > 0 ? requested : default_threads(); }

// fn(item, worker) for item in [0, n); worker in [0, threads) identifies per-thread scratch space.
void parallel_for(size_t n, int threads, const std::function<void(size_t item, int worker)>& fn);

}  // namespace moeforge
