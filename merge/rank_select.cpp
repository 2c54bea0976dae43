#include "merge/rank_select.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace moeforge {

float RankCut::value() const {
  uint32_t bits = (key & 0x80000000u) ? key & 0x7fffffffu : ~key;
  float v;
  __builtin_memcpy(&v, &bits, 4);
  return v;
}

RankSelect::RankSelect(int64_t n, std::vector<int64_t> ranks, bool descending, uint64_t keep_limit)
    : n_(n), descending_(descending), keep_limit_(keep_limit) {
  high_.assign(1u << 16, 0);
  high32_.assign(1u << 16, 0);
  set_ranks(std::move(ranks));
}

void RankSelect::set_ranks(std::vector<int64_t> ranks) {
  wanted_.clear();
  for (int64_t r : ranks) {
    if (r < 0 || r >= n_) throw Error(ExitCode::kInternal, "rank " + std::to_string(r) + " outside a tensor of " + std::to_string(n_));
    wanted_.push_back({.rank = r});
  }
  cuts_.assign(wanted_.size(), RankCut{});
}

void RankSelect::feed(const float* v, size_t count, int64_t first) {
  if (pass_ == 0) {
    if (unflushed_ + count >= (uint64_t{1} << 31)) flush_high();
    unflushed_ += count;
    uint32_t* h = high32_.data();
    for (size_t i = 0; i < count; ++i) ++h[order_key(v[i]) >> 16];
  } else if (pass_ == 1) {
    for (auto& [bucket, hist] : low_) {
      uint64_t* h = hist.data();
      auto kept = kept_.find(bucket);
      // Few elements fall in the bucket: a vectorised test skips runs of 64 without one.
      for (size_t i0 = 0; i0 < count; i0 += 64) {
        const size_t i1 = std::min(count, i0 + 64);
        uint32_t any = 0;
        for (size_t i = i0; i < i1; ++i) any |= (order_key(v[i]) >> 16) == bucket;
        if (!any) continue;
        for (size_t i = i0; i < i1; ++i) {
          uint32_t k = order_key(v[i]);
          if ((k >> 16) != bucket) continue;
          ++h[k & 0xffffu];
          if (kept != kept_.end()) kept->second.emplace_back(k, first + static_cast<int64_t>(i));
        }
      }
    }
  } else if (pass_ == 2) {
    for (size_t w = 0; w < wanted_.size(); ++w) {
      Wanted& x = wanted_[w];
      if (!x.needs_index || x.seen > x.occurrence) continue;
      for (size_t i = 0; i < count && x.seen <= x.occurrence; ++i)
        if (order_key(v[i]) == cuts_[w].key && x.seen++ == x.occurrence) cuts_[w].index = first + static_cast<int64_t>(i);
    }
  }
}

void RankSelect::flush_high() {
  for (size_t b = 0; b < high32_.size(); ++b) high_[b] += high32_[b];
  std::fill(high32_.begin(), high32_.end(), 0u);
  unflushed_ = 0;
}

void RankSelect::end_high() {
  flush_high();
  high32_ = {};
  for (auto& w : wanted_) {
    int64_t before = 0;
    for (uint32_t s = 0; s < (1u << 16); ++s) {
      uint32_t b = descending_ ? 0xffffu - s : s;
      int64_t c = static_cast<int64_t>(high_[b]);
      if (before + c > w.rank) {
        w.bucket = b;
        w.before = before;
        break;
      }
      before += c;
    }
    low_.try_emplace(w.bucket, std::vector<uint64_t>(1u << 16, 0));
    // A bucket of at most keep_limit elements is kept, so equal values need no third pass.
    if (high_[w.bucket] <= keep_limit_) kept_.try_emplace(w.bucket).first->second.reserve(high_[w.bucket]);
  }
  high_ = {};
}

void RankSelect::end_low() {
  bool any_index = false;
  for (size_t i = 0; i < wanted_.size(); ++i) {
    Wanted& w = wanted_[i];
    const auto& hist = low_.at(w.bucket);
    int64_t before = w.before;
    for (uint32_t s = 0; s < (1u << 16); ++s) {
      uint32_t lo = descending_ ? 0xffffu - s : s;
      int64_t c = static_cast<int64_t>(hist[lo]);
      if (before + c > w.rank) {
        cuts_[i].key = (w.bucket << 16) | lo;
        w.occurrence = w.rank - before;
        w.needs_index = c > 1;
        if (w.needs_index) find_kept(i);
        any_index = any_index || w.needs_index;
        break;
      }
      before += c;
    }
  }
  low_.clear();
  kept_.clear();
  pass_ = any_index ? 2 : -1;
}

void RankSelect::find_kept(size_t i) {
  Wanted& w = wanted_[i];
  auto it = kept_.find(w.bucket);
  if (it == kept_.end()) return;
  int64_t seen = 0;
  for (const auto& [key, index] : it->second)
    if (key == cuts_[i].key && seen++ == w.occurrence) {
      cuts_[i].index = index;
      w.needs_index = false;
      return;
    }
}

void RankSelect::end_pass() {
  if (pass_ == 0) {
    end_high();
    pass_ = wanted_.empty() ? -1 : 1;
  } else if (pass_ == 1) {
    end_low();
  } else if (pass_ == 2) {
    pass_ = -1;
  }
}

}  // namespace moeforge
