#include "text/tokenizer_text.hpp"

#include <array>
#include <cstdio>

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

namespace moeforge {
namespace {

// GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes get the code
// points 256, 257, … in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 324> to_byte;  // code point → byte, -1 when not in the alphabet

  ByteAlphabet() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      append_utf8(to_char[b], cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t n = decode_utf8(text, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

const std::string& byte_to_unicode(uint8_t byte) { return alphabet().to_char[byte]; }

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += alphabet().to_char[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> unicode_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t n = decode_utf8(text, i, &cp);
    if (n == 0 || cp >= alphabet().to_byte.size() || alphabet().to_byte[cp] < 0) return std::nullopt;
    out += static_cast<char>(alphabet().to_byte[cp]);
    i += n;
  }
  return out;
}

std::string byte_piece(uint8_t byte) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
  return buf;
}

std::optional<uint8_t> parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  int hi = hex_digit(piece[3]), lo = hex_digit(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

std::string nfc(std::string_view text) {
  // Lead bytes 0xCC and up start U+0300 and above; everything below is NFC on its own and
  // cannot combine with a preceding character.
  bool quick = true;
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0xCC) {
      quick = false;
      break;
    }
  if (quick || !is_valid_utf8(text)) return std::string(text);
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFCInstance(&err);
  int32_t len16 = 0;
  u_strFromUTF8(nullptr, 0, &len16, text.data(), static_cast<int32_t>(text.size()), &err);
  err = U_ZERO_ERROR;
  std::vector<UChar> in(static_cast<size_t>(len16) + 1), out(static_cast<size_t>(len16) * 3 + 16);
  u_strFromUTF8(in.data(), len16 + 1, nullptr, text.data(), static_cast<int32_t>(text.size()), &err);
  int32_t out_len = unorm2_normalize(n, in.data(), len16, out.data(), static_cast<int32_t>(out.size()), &err);
  std::string result(static_cast<size_t>(out_len) * 3 + 4, '\0');
  int32_t bytes = 0;
  u_strToUTF8(result.data(), static_cast<int32_t>(result.size()), &bytes, out.data(), out_len, &err);
  if (U_FAILURE(err)) return std::string(text);
  result.resize(static_cast<size_t>(bytes));
  return result;
}

}  // namespace moeforge
