// Small text helpers shared by every verb: natural name order, byte sizes, joining.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

// "layers.2" < "layers.10": digit runs compare as numbers, the rest as bytes.
bool natural_less(std::string_view a, std::string_view b);
// "5GB" = 5e9, "2GiB" = 2^31, "500MB", "600KB", "123" (bytes). Throws UsageError.
uint64_t parse_size(std::string_view text);
// 1234567 → "1.23 MB"
std::string format_bytes(uint64_t bytes);
// 46702792704 → "46.70B"
std::string format_count(uint64_t n);
// 0.001234 → "0.001234", 1234567 → "1.235e+06" (printf %.4g)
std::string format_number(double x);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::vector<std::string> split(std::string_view text, char sep);

}  // namespace moeforge
