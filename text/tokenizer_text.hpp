// Text helpers the tokenizers share: UTF-8 stepping, the GPT-2 byte-level alphabet (every byte
// has a printable stand-in character, so byte-level vocabularies are valid UTF-8 strings),
// SentencePiece's "<0xNN>" byte tokens, and Unicode NFC normalization.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/utf8.hpp"

namespace moeforge {

// Length of the UTF-8 sequence a byte starts; 1 for continuation or invalid bytes, so any byte
// string can be stepped through (as llama.cpp and SentencePiece do).
inline size_t utf8_len(unsigned char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}
// Length of the character at text[pos], clamped to the end of the text.
inline size_t utf8_char_len(std::string_view text, size_t pos) {
  size_t n = utf8_len(static_cast<unsigned char>(text[pos]));
  return n <= text.size() - pos ? n : text.size() - pos;
}
bool is_valid_utf8(std::string_view text);

// GPT-2 byte-level alphabet.
const std::string& byte_to_unicode(uint8_t byte);      // UTF-8 of the stand-in character
std::string bytes_to_unicode(std::string_view bytes);   // maps every byte
// Inverse of bytes_to_unicode; nullopt when a character is not in the alphabet.
std::optional<std::string> unicode_to_bytes(std::string_view text);

// "<0x0A>" ↔ 0x0A (upper-case hex, as SentencePiece writes them).
std::string byte_piece(uint8_t byte);
std::optional<uint8_t> parse_byte_piece(std::string_view piece);

// Unicode NFC through ICU. Text whose characters are all below U+0300 is already NFC and is
// returned as is without calling ICU (the common case, and fast).
std::string nfc(std::string_view text);

}  // namespace moeforge
