#include "merge/rank_select.hpp"

#include "core/error.hpp"

namespace moeforge {

float RankCut::value() const {
  uint32_t bits = (key & 0x80000000u) ? key & 0x7fffffffu : ~key;
  float v;
  __builtin_memcpy(&v, &bits, 4);
  return v;
}

RankSelect::RankSelect(int64_t n, std::vector<int64_t> ranks, bool descending) : n_(n), descending_(descending) {
  high_.assign(1u << 16, 0);
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
    uint64_t* h = high_.data();
    for (size_t i = 0; i < count; ++i) ++h[order_key(v[i]) >> 16];
  } else if (pass_ == 1) {
    for (auto& [bucket, hist] : low_) {
      uint64_t* h = hist.data();
      for (size_t i = 0; i < count; ++i) {
        uint32_t k = order_key(v[i]);
        if ((k >> 16) == bucket) ++h[k & 0xffffu];
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

void RankSelect::end_high() {
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
        any_index = any_index || w.needs_index;
        break;
      }
      before += c;
    }
  }
  low_.clear();
  pass_ = any_index ? 2 : -1;
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
