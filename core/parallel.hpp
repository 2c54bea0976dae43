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

int default_threads();  // the cores this process may run on (its CPU affinity)
// 0 means "all cores"; more than the cores is capped there (threads beyond the cores only cost
// memory: every worker holds its own buffers).
inline int resolve_threads(int64_t requested) {
  int cores = default_threads();
  return requested > 0 && requested < cores ? static_cast<int>(requested) : cores;
}

// fn(item, worker) for item in [0, n); worker in [0, threads) identifies per-thread scratch space.
void parallel_for(size_t n, int threads, const std::function<void(size_t item, int worker)>& fn);

}  // namespace moeforge
