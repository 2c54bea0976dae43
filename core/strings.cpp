#include "core/strings.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"

namespace moeforge {

bool natural_less(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string_view na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

uint64_t parse_size(std::string_view text) {
  size_t k = 0;
  while (k < text.size() && (std::isdigit(static_cast<unsigned char>(text[k])) || text[k] == '.')) ++k;
  std::string number(text.substr(0, k));
  std::string unit(text.substr(k));
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  struct Unit {
    const char* name;
    double factor;
  };
  static const Unit kUnits[] = {{"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
                                {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0},
                                {"TIB", 1099511627776.0}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}};
  double value = 0;
  char* end = nullptr;
  if (!number.empty()) value = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size())
    throw UsageError("size \"" + std::string(text) + "\": expected a number with an optional unit (500MB, 5GB, 2GiB)");
  for (const auto& u : kUnits)
    if (unit == u.name) {
      double bytes = std::floor(value * u.factor);
      if (bytes < 1) throw UsageError("size \"" + std::string(text) + "\" must be at least 1 byte");
      return static_cast<uint64_t>(bytes);
    }
  throw UsageError("size \"" + std::string(text) + "\": unknown unit \"" + unit + "\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
}

std::string format_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, kUnits[u]);
  return buf;
}

std::string format_count(uint64_t n) {
  static const char* kUnits[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.2f%s", v, kUnits[u]);
  return buf;
}

std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t k = text.find(sep, start);
    out.emplace_back(text.substr(start, k == std::string_view::npos ? std::string_view::npos : k - start));
    if (k == std::string_view::npos) break;
    start = k + 1;
  }
  return out;
}

}  // namespace moeforge
