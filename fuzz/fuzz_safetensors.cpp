// libFuzzer target: the safetensors header parser must reject any input with an Error, never crash.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.hpp"
#include "formats/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = moeforge::parse_safetensors({reinterpret_cast<const std::byte*>(data), size}, "fuzz.safetensors");
    for (const auto& t : h.tensors)  // a parsed header must describe bytes inside the input
      if (h.data_start + t.end > size) __builtin_trap();
  } catch (const moeforge::Error&) {
  }
  return 0;
}
