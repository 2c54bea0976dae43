#include "compress/expert_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <cstdio>

#include "core/error.hpp"
#include "plot/axis.hpp"
#include "plot/colour.hpp"
#include "plot/heat_map.hpp"

namespace moeforge {

nlohmann::ordered_json expert_report_json(const std::string& verb, const std::string& method, const std::vector<LayerCells>& layers) {
  nlohmann::ordered_json out = {{"verb", verb}, {"method", method}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& l : layers) {
    nlohmann::ordered_json experts = nlohmann::ordered_json::array();
    int kept = 0;
    for (size_t e = 0; e < l.experts.size(); ++e) {
      const auto& c = l.experts[e];
      nlohmann::ordered_json j = {{"expert", e}};
      j["score"] = c.has_score ? nlohmann::ordered_json(c.score) : nlohmann::ordered_json(nullptr);
      j["kept"] = c.kept;
      j["protected"] = c.protected_;
      j["new_index"] = c.kept ? nlohmann::ordered_json(c.new_index) : nlohmann::ordered_json(nullptr);
      kept += c.kept;
      experts.push_back(std::move(j));
    }
    rows.push_back({{"layer", l.layer}, {"kept", kept}, {"experts", experts}});
  }
  out["layers"] = rows;
  return out;
}

namespace {

const char* score_label(const std::string& criterion) {
  static const std::pair<const char*, const char*> kLabels[] = {
      {"reap", "REAP score"},     {"frequency", "routed tokens"}, {"weighted-frequency", "gate-weight sum"}, {"ean", "EAN"},
      {"ean-mean", "EAN mean"},   {"easy-ep", "EASY-EP score"},   {"random", "random score"}};
  for (const auto& [name, label] : kLabels)
    if (criterion == name) return label;
  return "score";
}

std::string count_range(int lo, int hi) { return lo == hi ? std::to_string(lo) : std::to_string(lo) + "\u2013" + std::to_string(hi); }

// "2 of 8 experts kept per layer", or for merging "8 experts merged into 2 per layer".
std::string budget_text(const std::vector<LayerCells>& layers, bool merging) {
  int lo = INT32_MAX, hi = 0, experts = 0;
  for (const auto& l : layers) {
    int n = 0;
    if (merging) {
      for (const auto& c : l.experts) n = std::max(n, c.new_index + 1);
    } else {
      for (const auto& c : l.experts) n += c.kept;
    }
    lo = std::min(lo, n), hi = std::max(hi, n);
    experts = std::max(experts, static_cast<int>(l.experts.size()));
  }
  if (layers.empty()) return "no MoE layers";
  if (merging) return std::to_string(experts) + " experts merged into " + count_range(lo, hi) + " per layer";
  return count_range(lo, hi) + " of " + std::to_string(experts) + " experts kept per layer";
}

std::string layer_span_text(const std::vector<LayerCells>& layers) {
  size_t experts = 0;
  for (const auto& l : layers) experts = std::max(experts, l.experts.size());
  return std::to_string(layers.size()) + " MoE layer" + (layers.size() == 1 ? "" : "s") + " \u00d7 " + std::to_string(experts) + " experts";
}

double highest_score(const LayerCells& l) {
  double hi = -INFINITY;
  for (const auto& c : l.experts)
    if (c.has_score && std::isfinite(c.score)) hi = std::max(hi, c.score);
  return hi;
}

bool any_score(const std::vector<LayerCells>& layers) {
  for (const auto& l : layers)
    for (const auto& c : l.experts)
      if (c.has_score) return true;
  return false;
}

std::string cell_prefix(const LayerCells& l, size_t e) { return "layer " + std::to_string(l.layer) + " \u00b7 expert " + std::to_string(e); }

HeatMap prune_map(const ExpertPlotInfo& info, const std::vector<LayerCells>& layers) {
  HeatMap map;
  const std::string label = score_label(info.criterion);
  const bool scored = any_score(layers);
  map.title = info.verb + " " + info.model + ": " + (scored ? label : info.method) + ", " + budget_text(layers, false);
  map.subtitle = layer_span_text(layers) + (info.method == "manual list" ? " \u00b7 experts chosen by a manual list" : "");
  double global = -INFINITY;
  for (const auto& l : layers) global = std::max(global, highest_score(l));
  if (scored) {
    ColourScale scale;
    scale.caption = info.global_scale ? "colour: " + label : "colour: " + label + " \u00f7 the layer\u2019s highest (shown at the right)";
    scale.hi = info.global_scale && std::isfinite(global) && global > 0 ? nice_range(0, global).hi : 1;
    map.scale = scale;
    if (!info.global_scale) map.notes_header = "highest";
  }
  HeatPanel panel;
  bool any_dropped = false, any_protected = false;
  for (const auto& l : layers) {
    double hi = info.global_scale ? global : highest_score(l);
    panel.row_labels.push_back(std::to_string(l.layer));
    if (!info.global_scale && scored) panel.row_notes.push_back(std::isfinite(hi) ? format_value(hi, 3) : "");
    auto& row = panel.rows.emplace_back();
    for (size_t e = 0; e < l.experts.size(); ++e) {
      const ExpertCell& c = l.experts[e];
      HeatCell cell;
      if (c.has_score && std::isfinite(c.score)) {
        cell.value = info.global_scale ? c.score : (hi > 0 ? c.score / hi : 0.0);
        cell.label = info.global_scale ? format_value(*cell.value, 2) : format_fixed(*cell.value, 2);  // drawn where it fits
      }
      cell.greyed = cell.crossed = !c.kept;
      cell.outlined = c.protected_;
      any_dropped |= !c.kept;
      any_protected |= c.protected_;
      cell.tooltip = cell_prefix(l, e) + (c.has_score ? " \u00b7 " + label + " " + format_value(c.score, 6) : std::string()) +
                     (c.kept ? " \u00b7 kept as " + std::to_string(c.new_index) : " \u00b7 dropped") + (c.protected_ ? " \u00b7 protected" : "");
      row.push_back(std::move(cell));
    }
  }
  map.panels.push_back(std::move(panel));
  const bool crosses = heat_cell_size(map.panels[0].rows.empty() ? 0 : map.panels[0].rows[0].size()).width >= 9;
  HeatCell kept, dropped, prot;
  kept.value = dropped.value = prot.value = map.scale ? map.scale->hi * 0.75 : 0;
  if (!scored) kept.value = dropped.value = prot.value = std::nullopt;
  dropped.greyed = true;
  dropped.crossed = crosses;
  prot.outlined = true;
  map.legend.push_back(cell_entry("kept", kept, map.scale));
  if (any_dropped)
    map.legend.push_back(cell_entry(std::string("dropped (grey") + (crosses ? ", crossed out" : "") + (scored ? "; shade = score)" : ")"), dropped, map.scale));
  if (any_protected) map.legend.push_back(cell_entry("protected (never dropped)", prot, map.scale));
  if (scored && !info.criterion_meaning.empty()) map.footnotes.push_back("criterion " + info.criterion + ": " + info.criterion_meaning);
  map.footnotes.push_back(scored ? "Hover a cell for its exact score and new index." : "Hover a cell for its new index.");
  return map;
}

// Members of each merged expert in one layer.
std::vector<std::vector<size_t>> group_members(const LayerCells& l) {
  std::vector<std::vector<size_t>> groups;
  for (size_t e = 0; e < l.experts.size(); ++e) {
    int g = l.experts[e].new_index;
    if (g < 0) continue;
    if (groups.size() <= static_cast<size_t>(g)) groups.resize(static_cast<size_t>(g) + 1);
    groups[static_cast<size_t>(g)].push_back(e);
  }
  return groups;
}

std::string members_text(const std::vector<size_t>& members, size_t self) {
  std::vector<std::string> others;
  for (size_t m : members)
    if (m != self) others.push_back(std::to_string(m));
  if (others.empty()) return " (alone)";
  std::string s = " (with ";
  for (size_t i = 0; i < others.size(); ++i) s += (i ? ", " : "") + others[i];
  return s + ")";
}

// Where numbers fit in the cells, the band shows which merged expert a cell joins (colours repeat
// every kCategories); where they do not (many experts), it shows how large its group is.
struct GroupSizeClass {
  size_t min, max;
  const char* colour;
  const char* label;
};
constexpr GroupSizeClass kGroupSizes[] = {{2, 2, "#fdd0a2", "in a group of 2"},
                                          {3, 3, "#fdae6b", "of 3"},
                                          {4, 4, "#fd8d3c", "of 4"},
                                          {5, 8, "#e6550d", "of 5\u20138"},
                                          {9, SIZE_MAX, "#a63603", "of 9 or more"}};

const GroupSizeClass& size_class(size_t n) {
  for (const auto& k : kGroupSizes)
    if (n >= k.min && n <= k.max) return k;
  return kGroupSizes[0];
}

void add_merge_legend(HeatMap& map, bool numbered, const std::vector<bool>& sizes_seen, bool any_alone, size_t most_groups) {
  HeatCell sample;
  sample.value = map.scale ? std::optional<double>(map.scale->hi * 0.75) : std::nullopt;
  if (numbered) {
    HeatCell merged = sample;
    merged.band = category_colour(1);
    merged.label = sample.label = "3";
    map.legend.push_back(cell_entry("number and band: the merged expert it joins", merged, map.scale));
    if (most_groups > static_cast<size_t>(kCategories)) map.footnotes.push_back("Band colours repeat every " + std::to_string(kCategories) + " merged experts.");
  } else {
    for (size_t k = 0; k < std::size(kGroupSizes); ++k) {
      if (!sizes_seen[k]) continue;
      HeatCell merged = sample;
      merged.band = kGroupSizes[k].colour;
      map.legend.push_back(cell_entry(std::string(map.legend.empty() ? "band: merged, " : "") + kGroupSizes[k].label, merged, map.scale));
    }
  }
  if (any_alone) map.legend.push_back(cell_entry("no band: kept alone (a group of one)", sample, map.scale));
  map.footnotes.push_back(numbered ? "Hover a cell for its group and usage."
                                   : "Hover a cell for the merged expert it joins, the other members and its usage.");
}

HeatMap merge_map(const ExpertPlotInfo& info, const std::vector<LayerCells>& layers) {
  HeatMap map;
  map.title = info.verb + " " + info.model + ": " + info.method + ", " + budget_text(layers, true);
  map.subtitle = layer_span_text(layers);
  double global = 0;
  for (const auto& l : layers) global = std::max(global, std::isfinite(highest_score(l)) ? highest_score(l) : 0.0);
  if (any_score(layers)) {
    ColourScale scale;
    scale.caption = "colour: share of the layer\u2019s tokens routed to the expert";
    scale.hi = global > 0 ? nice_range(0, global).hi : 1;
    map.scale = scale;
  }
  size_t columns = 0, most_groups = 0;
  for (const auto& l : layers) columns = std::max(columns, l.experts.size()), most_groups = std::max(most_groups, group_members(l).size());
  const bool numbered = heat_label_fits(heat_cell_size(columns), std::to_string(most_groups > 0 ? most_groups - 1 : 0), true);
  HeatPanel panel;
  std::vector<bool> sizes_seen(std::size(kGroupSizes));
  bool any_alone = false;
  for (const auto& l : layers) {
    panel.row_labels.push_back(std::to_string(l.layer));
    auto groups = group_members(l);
    auto& row = panel.rows.emplace_back();
    for (size_t e = 0; e < l.experts.size(); ++e) {
      const ExpertCell& c = l.experts[e];
      const auto& members = groups[static_cast<size_t>(c.new_index)];
      HeatCell cell;
      if (c.has_score && std::isfinite(c.score)) cell.value = c.score;
      any_alone |= members.size() < 2;
      if (members.size() >= 2) {
        const GroupSizeClass& k = size_class(members.size());
        sizes_seen[static_cast<size_t>(&k - kGroupSizes)] = true;
        cell.band = numbered ? category_colour(c.new_index) : k.colour;
      }
      if (numbered) cell.label = std::to_string(c.new_index);
      cell.tooltip = cell_prefix(l, e) + (c.has_score ? " \u00b7 share of tokens " + format_value(c.score, 6) : std::string()) +
                     " \u00b7 merged into " + std::to_string(c.new_index) + members_text(members, e);
      row.push_back(std::move(cell));
    }
  }
  map.panels.push_back(std::move(panel));
  add_merge_legend(map, numbered, sizes_seen, any_alone, most_groups);
  return map;
}

}  // namespace

std::string expert_heat_map_svg(const ExpertPlotInfo& info, const std::vector<LayerCells>& layers) {
  return render_heat_map(info.merging ? merge_map(info, layers) : prune_map(info, layers), info.metadata);
}

}  // namespace moeforge
