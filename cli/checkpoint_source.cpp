#include "cli/checkpoint_source.hpp"

#include "core/error.hpp"
#include "formats/gguf.hpp"
#include "model/gguf_checkpoint.hpp"

namespace moeforge {

std::unique_ptr<Checkpoint> open_checkpoint(const RunContext& ctx, const std::string& path) {
  auto it = ctx.planned.find(path);
  if (it == ctx.planned.end()) {
    if (std::filesystem::is_regular_file(path) && looks_like_gguf(path)) return open_gguf_checkpoint(path);
    return std::make_unique<Checkpoint>(path);
  }
  const nlohmann::json& plan = it->second;
  std::vector<TensorInfo> tensors;
  for (const auto& t : plan["tensors"]) {
    TensorInfo info;
    info.name = t["name"];
    info.dtype = *find_dtype(t["dtype"].get<std::string>());
    info.shape = t["shape"].get<Shape>();
    info.end = t["bytes"].get<uint64_t>();
    tensors.push_back(std::move(info));
  }
  return std::make_unique<Checkpoint>(path + " (planned)", plan["config"], std::move(tensors));
}

}  // namespace moeforge
