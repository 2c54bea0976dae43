#pragma once
// UTF-8 decoding and encoding shared by the tokenizers and the SVG writer: strict (shortest form,
// no surrogates, at most U+10FFFF), so malformed bytes are always noticed by the caller.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moeforge {

// Decodes the character at s[pos]; returns its length in bytes, or 0 when it is malformed.
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* code_point);
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace moeforge
