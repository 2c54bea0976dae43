#include "engine/weights.hpp"

#include <cstdint>

#include "core/error.hpp"
#include "formats/tensor_reader.hpp"

namespace moeforge {

Weight::Weight(const TensorInfo& t) : name_(t.name), info_(&t), rows_(t.shape.size() < 2 ? 1 : t.shape[0]) {
  cols_ = rows_ == 0 ? 0 : t.numel() / rows_;
  // Views (a GGUF tensor under its Hugging Face name) have no bytes to map: they are decoded.
  auto bytes = t.source == nullptr ? mapped_bytes(t) : std::span<const std::byte>();
  if (t.source == nullptr && t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0) {
    data_ = reinterpret_cast<const float*>(bytes.data());
    mapped_ = true;
  } else {
    owned_ = read_f32(t);
    data_ = owned_.data();
  }
}

Weight::Weight(std::string name, int64_t rows, int64_t cols, std::vector<float> values)
    : name_(std::move(name)), owned_(std::move(values)), rows_(rows), cols_(cols) {
  if (static_cast<int64_t>(owned_.size()) != rows * cols) throw Error(ExitCode::kInternal, name_ + ": owned weight of the wrong size");
  data_ = owned_.data();
}

Weight::~Weight() { release(); }

Weight::Weight(Weight&& o) noexcept { *this = std::move(o); }

Weight& Weight::operator=(Weight&& o) noexcept {
  if (this == &o) return *this;
  release();
  name_ = std::move(o.name_);
  info_ = o.info_;
  owned_ = std::move(o.owned_);
  data_ = o.mapped_ ? o.data_ : owned_.data();
  rows_ = o.rows_;
  cols_ = o.cols_;
  mapped_ = o.mapped_;
  o.data_ = nullptr;
  o.mapped_ = false;
  return *this;
}

void Weight::release() {
  if (mapped_ && info_ != nullptr)
    info_->file->mapping().release(info_->file->header().data_start + info_->begin, info_->nbytes());
  mapped_ = false;
  data_ = nullptr;
}

}  // namespace moeforge
