#include "plot/labels.hpp"

#include <algorithm>

namespace moeforge {
namespace {

std::vector<std::string> components(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string::npos) slash = p.size();
    if (slash > start) parts.push_back(p.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string tail(const std::vector<std::string>& parts, size_t n) {
  std::string s;
  for (size_t i = parts.size() - std::min(n, parts.size()); i < parts.size(); ++i) s += (s.empty() ? "" : "/") + parts[i];
  return s;
}

}  // namespace

std::string short_path_name(const std::string& path) {
  auto parts = components(path);
  if (parts.empty()) return path;
  std::string name = parts.back();
  return name == "." || name == ".." ? path : name;
}

std::vector<std::string> distinct_path_labels(const std::vector<std::string>& paths) {
  std::vector<std::vector<std::string>> parts;
  for (const auto& p : paths) parts.push_back(components(p));
  std::vector<std::string> out;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::string label = paths[i];
    for (size_t n = 1; n <= parts[i].size(); ++n) {
      std::string mine = tail(parts[i], n);
      bool clash = false;
      for (size_t j = 0; j < paths.size() && !clash; ++j) clash = j != i && tail(parts[j], n) == mine;
      if (!clash) {
        label = mine;
        break;
      }
    }
    out.push_back(label.empty() ? paths[i] : label);
  }
  return out;
}

std::string ellipsize(const std::string& text, size_t max) {
  size_t points = 0, cut = std::string::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // a continuation byte
    if (points == (max > 0 ? max - 1 : 0)) cut = i;
    ++points;
  }
  return points <= max ? text : text.substr(0, cut) + "\u2026";
}

}  // namespace moeforge
