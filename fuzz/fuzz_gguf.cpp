// libFuzzer target: the GGUF parser must reject any input with an Error, never crash.
#include <cstddef>
#include <cstdint>

#include "core/error.hpp"
#include "formats/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto g = moeforge::parse_gguf({reinterpret_cast<const std::byte*>(data), size}, "fuzz.gguf");
    for (const auto& t : g.tensors)  // accepted tensors lie inside the input
      if (g.data_start + t.offset + t.nbytes > size) __builtin_trap();
  } catch (const moeforge::Error&) {
  }
  return 0;
}
