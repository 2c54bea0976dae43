#include "engine/stats_merge.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "formats/tensor_info.hpp"

namespace moeforge {
namespace {

using nlohmann::json;

// Keys of the description that say which model and which statistics a file holds.
constexpr const char* kShapeKeys[] = {"model_type", "n_layers", "hidden", "n_experts", "top_k", "moe_layers", "all_outputs"};

struct Piece {
  int64_t first = 0, last = 0;  // windows [first, last)
  int k = 1, n = 1;
  size_t input = 0;
};

// One dataset of one input: its files are input files [file_offset, file_offset + n_files).
struct Member {
  size_t input = 0, file_offset = 0, n_files = 0;
  std::vector<Piece> pieces;
  bool partial = false;
  int64_t start() const { return pieces.empty() ? 0 : pieces.front().first; }
};

struct Group {
  json dataset;  // files, windows, tokens of the first member
  std::vector<Member> members;
};

// The run of an input; files without one (version 1, or written elsewhere) are one complete
// piece over the files they list, identified by path.
json run_of(const StatsInput& in) {
  const json& d = in.stats.description;
  if (d.contains("run") && d["run"].is_object()) return d["run"];
  json files = json::array();
  for (const auto& f : d.at("files")) files.push_back({{"path", f.at("path")}});
  json dataset = {{"files", files}, {"windows", nullptr}, {"tokens", nullptr}, {"pieces", {{{"shard", {1, 1}}, {"windows", nullptr}}}}};
  return {{"model_fingerprint", nullptr}, {"options", nullptr}, {"datasets", {dataset}}};
}

json file_identity(const json& f) {
  if (f.contains("sha256")) return {f.value("kind", ""), f.value("bytes", json()), f["sha256"]};
  return {f.at("path")};
}

std::string dataset_key(const json& ds) {
  json files = json::array();
  for (const auto& f : ds.at("files")) files.push_back(file_identity(f));
  return json{files, ds.value("windows", json()), ds.value("tokens", json())}.dump();
}

std::string data_names(const json& ds) {
  std::vector<std::string> names;
  for (const auto& f : ds.at("files")) names.push_back(f.at("path").get<std::string>());
  return join(names, ", ");
}

void check_same_model(const StatsInput& a, const StatsInput& b) {
  const json &da = a.stats.description, &db = b.stats.description;
  for (const char* key : kShapeKeys)
    if (da.value(key, json()) != db.value(key, json()))
      throw MismatchError(a.label + " and " + b.label + " are statistics of different models or kinds: " + key + " " + da.value(key, json()).dump() +
                          " vs " + db.value(key, json()).dump() + "; hint: merge only files that `moeforge observe` made on the same model with the same options");
  json ra = run_of(a), rb = run_of(b);
  json fa = ra.value("model_fingerprint", json()), fb = rb.value("model_fingerprint", json());
  if (!fa.is_null() && !fb.is_null() && fa != fb)
    throw MismatchError(a.label + " and " + b.label + " were computed on different models (" + da.value("model", std::string("?")) + ", fingerprint " +
                        fa.get<std::string>().substr(0, 12) + " vs " + db.value("model", std::string("?")) + ", fingerprint " +
                        fb.get<std::string>().substr(0, 12) + "); hint: observe every shard on the same checkpoint");
  json oa = ra.value("options", json()), ob = rb.value("options", json());
  if (!oa.is_null() && !ob.is_null() && oa != ob) {
    std::vector<std::string> diffs;
    for (const auto& [k, v] : oa.items())
      if (ob.value(k, json()) != v) diffs.push_back(k + " " + v.dump() + " vs " + ob.value(k, json()).dump());
    for (const auto& [k, v] : ob.items())
      if (!oa.contains(k)) diffs.push_back(k + " null vs " + v.dump());
    throw MismatchError(a.label + " and " + b.label + " were computed with different options (" + join(diffs, ", ") +
                        "); hint: run every shard with the same command line");
  }
}

std::vector<Piece> pieces_of(const json& ds, size_t input) {
  std::vector<Piece> out;
  for (const auto& p : ds.at("pieces")) {
    Piece x;
    x.input = input;
    x.k = p.at("shard").at(0);
    x.n = p.at("shard").at(1);
    const json& w = p.value("windows", json());
    x.first = w.is_null() ? 0 : w.at(0).get<int64_t>();
    x.last = w.is_null() ? ds.value("windows", json()).is_null() ? INT64_MAX : ds["windows"].get<int64_t>() : w.at(1).get<int64_t>();
    out.push_back(x);
  }
  std::sort(out.begin(), out.end(), [](const Piece& a, const Piece& b) { return a.first != b.first ? a.first < b.first : a.last < b.last; });
  return out;
}

std::string piece_name(const Piece& p, const std::vector<StatsInput>& inputs) {
  return "shard " + std::to_string(p.k) + "/" + std::to_string(p.n) + " (" + inputs[p.input].label + ", windows " + std::to_string(p.first) + "-" +
         std::to_string(p.last) + ")";
}

// Duplicates and overlaps are refused; returns what is missing ("" when every window is covered).
std::string check_coverage(const Group& g, const std::vector<StatsInput>& inputs) {
  std::vector<Piece> all;
  for (const auto& m : g.members) all.insert(all.end(), m.pieces.begin(), m.pieces.end());
  std::sort(all.begin(), all.end(), [](const Piece& a, const Piece& b) { return a.first != b.first ? a.first < b.first : a.last < b.last; });
  std::set<std::pair<int, int>> seen;
  for (const auto& p : all)
    if (!seen.insert({p.k, p.n}).second)
      for (const auto& q : all)
        if (&q != &p && q.k == p.k && q.n == p.n)
          throw MismatchError("duplicate shard " + std::to_string(p.k) + "/" + std::to_string(p.n) + " of " + data_names(g.dataset) + ": " +
                              inputs[q.input].label + " and " + inputs[p.input].label + "; hint: give each shard once");
  int64_t cursor = 0;
  std::vector<std::string> gaps;
  const Piece* prev = nullptr;
  for (const auto& p : all) {
    if (p.first == p.last) continue;  // an empty shard covers nothing
    if (prev != nullptr && p.first < prev->last)
      throw MismatchError(piece_name(*prev, inputs) + " and " + piece_name(p, inputs) + " overlap: the same windows would count twice; hint: " +
                          "merge shards of one split (same N), or pieces that do not share windows");
    if (p.first > cursor) gaps.push_back(std::to_string(cursor) + "-" + std::to_string(p.first));
    cursor = std::max(cursor, p.last);
    prev = &p;
  }
  const json& w = g.dataset.value("windows", json());
  int64_t total = w.is_null() ? cursor : w.get<int64_t>();
  if (cursor < total) gaps.push_back(std::to_string(cursor) + "-" + std::to_string(total));
  if (gaps.empty()) return "";
  std::string missing;
  bool one_split = std::all_of(all.begin(), all.end(), [&](const Piece& p) { return p.n == all.front().n; });
  if (one_split) {
    std::vector<std::string> names;
    for (int k = 1; k <= all.front().n; ++k)
      if (!seen.count({k, all.front().n})) names.push_back(std::to_string(k) + "/" + std::to_string(all.front().n));
    missing = "missing shards " + join(names, ", ") + " (";
  } else {
    missing = "incomplete (";
  }
  return missing + "windows " + join(gaps, ", ") + " of " + std::to_string(total) + " not covered) of " + data_names(g.dataset);
}

// "files.7.layers.0.count" → 7 and ".layers.0.count"; -1 for tensors outside any file.
int64_t file_index(const std::string& name, std::string* rest) {
  if (name.rfind("files.", 0) != 0) return -1;
  size_t dot = name.find('.', 6);
  if (dot == std::string::npos || dot == 6) return -1;
  int64_t f = 0;
  for (size_t i = 6; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    f = f * 10 + (name[i] - '0');
  }
  *rest = name.substr(dot);
  return f;
}

std::vector<Group> group_datasets(const std::vector<StatsInput>& inputs) {
  std::vector<Group> groups;
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < inputs.size(); ++i) {
    json run = run_of(inputs[i]);
    size_t offset = 0, listed = inputs[i].stats.description.at("files").size();
    for (const auto& ds : run.at("datasets")) {
      Member m{i, offset, ds.at("files").size(), pieces_of(ds, i), ds.value("partial", false)};
      offset += m.n_files;
      auto [it, fresh] = by_key.try_emplace(dataset_key(ds), groups.size());
      if (fresh) groups.push_back({ds, {}});
      groups[it->second].members.push_back(std::move(m));
    }
    if (offset != listed)
      throw FormatError(inputs[i].label + ": the run description lists " + std::to_string(offset) + " data files, the statistics " + std::to_string(listed));
  }
  // A data file in two different datasets would count twice.
  std::map<std::string, size_t> owner;
  for (size_t g = 0; g < groups.size(); ++g)
    for (const auto& f : groups[g].dataset.at("files")) {
      auto [it, fresh] = owner.try_emplace(file_identity(f).dump(), g);
      if (!fresh && it->second != g)
        throw MismatchError("data file " + f.at("path").get<std::string>() + " is part of two different calibrations (" + inputs[groups[it->second].members[0].input].label +
                            ": " + data_names(groups[it->second].dataset) + "; " + inputs[groups[g].members[0].input].label + ": " +
                            data_names(groups[g].dataset) + "): its tokens would count twice");
    }
  for (auto& g : groups) std::stable_sort(g.members.begin(), g.members.end(), [](const Member& a, const Member& b) { return a.start() < b.start(); });
  return groups;
}

// Every tensor of a member, file indices replaced by '*': all members must agree.
std::map<std::string, Shape> layout_of(const StatsInput& in, const Member& m) {
  std::map<std::string, Shape> out;
  for (const auto& t : in.stats.tensors) {
    std::string rest;
    int64_t f = file_index(t.name, &rest);
    if (f < 0) out[t.name] = t.shape;
    else if (f >= static_cast<int64_t>(m.file_offset) && f < static_cast<int64_t>(m.file_offset + m.n_files)) out["files.*" + rest] = t.shape;
  }
  return out;
}

void check_same_tensors(const std::vector<StatsInput>& inputs, const std::vector<Group>& groups) {
  const Member& ref = groups[0].members[0];
  auto expected = layout_of(inputs[ref.input], ref);
  for (const auto& g : groups)
    for (const auto& m : g.members) {
      auto found = layout_of(inputs[m.input], m);
      for (const auto& [name, shape] : expected) {
        auto it = found.find(name);
        if (it == found.end() || it->second != shape)
          throw MismatchError(inputs[ref.input].label + " and " + inputs[m.input].label + " hold different statistics: tensor '" + name + "' " +
                              (it == found.end() ? "is missing from the second" : "has shape " + shape_string(shape) + " vs " + shape_string(it->second)) +
                              "; hint: merge files observed with the same options");
      }
      for (const auto& [name, shape] : found)
        if (!expected.count(name))
          throw MismatchError(inputs[m.input].label + " holds tensor '" + name + "' that " + inputs[ref.input].label +
                              " lacks; hint: merge files observed with the same options");
    }
}

// Folds the member's tensors into `out` (file f of the member becomes file out_file + f).
void fold_member(const StatsInput& in, const Member& m, size_t out_file, bool with_global, std::vector<StatTensor>& out,
                 std::unordered_map<std::string, size_t>& index) {
  for (const auto& t : in.stats.tensors) {
    std::string rest, name = t.name;
    int64_t f = file_index(t.name, &rest);
    if (f >= 0) {
      if (f < static_cast<int64_t>(m.file_offset) || f >= static_cast<int64_t>(m.file_offset + m.n_files)) continue;
      name = "files." + std::to_string(out_file + static_cast<size_t>(f) - m.file_offset) + rest;
    } else if (!with_global) {
      continue;  // tensors outside the files are folded once per input
    }
    auto [it, fresh] = index.try_emplace(name, out.size());
    if (fresh) out.push_back({name, t.shape, t.values});
    else fold(out[it->second], t.values.data(), t.values.size());
  }
}

}  // namespace

MergeOutcome merge_stats(const std::vector<StatsInput>& inputs, bool partial) {
  if (inputs.empty()) throw UsageError("no statistics files to merge");
  for (const auto& in : inputs) check_same_model(inputs[0], in);
  std::vector<Group> groups;
  try {
    groups = group_datasets(inputs);
  } catch (const json::exception& e) {
    throw FormatError("malformed run description in the statistics (" + std::string(e.what()) + ")");
  }
  check_same_tensors(inputs, groups);
  MergeOutcome result;
  StatsTensors& out = result.stats;
  out.description = inputs[0].stats.description;
  json run = run_of(inputs[0]), datasets = json::array(), files = json::array(), meanings = json::object();
  for (const auto& in : inputs) {
    if (in.stats.description.contains("stats")) meanings.update(in.stats.description["stats"]);
    json r = run_of(in);
    for (const char* key : {"model_fingerprint", "options"})
      if (run.value(key, json()).is_null()) run[key] = r.value(key, json());
  }
  std::unordered_map<std::string, size_t> index;
  std::set<size_t> folded_global;
  size_t out_file = 0;
  for (const auto& g : groups) {
    std::string missing = check_coverage(g, inputs);
    bool accepted = partial || std::any_of(g.members.begin(), g.members.end(), [](const Member& m) { return m.partial; });
    if (!missing.empty() && !accepted) throw MismatchError(missing + "; hint: give every shard, or merge with `moeforge stats merge --partial`");
    if (!missing.empty()) result.incomplete.push_back(missing);
    json ds = {{"files", g.dataset.at("files")}, {"windows", g.dataset.value("windows", json())}, {"tokens", g.dataset.value("tokens", json())}};
    std::vector<Piece> pieces;
    for (const auto& m : g.members) {
      fold_member(inputs[m.input], m, out_file, folded_global.insert(m.input).second, out.tensors, index);
      pieces.insert(pieces.end(), m.pieces.begin(), m.pieces.end());
    }
    std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.first != b.first ? a.first < b.first : a.last < b.last; });
    json jp = json::array();
    for (const auto& p : pieces)
      jp.push_back({{"shard", {p.k, p.n}}, {"windows", p.last == INT64_MAX ? json() : json{p.first, p.last}}});
    ds["pieces"] = jp;
    if (!missing.empty()) ds["partial"] = true;
    datasets.push_back(ds);
    const json& listed = inputs[g.members[0].input].stats.description.at("files");
    for (size_t f = 0; f < g.members[0].n_files; ++f) {
      auto tokens = index.find("files." + std::to_string(out_file + f) + ".tokens");
      json count = tokens == index.end() ? json() : json(out.tensors[tokens->second].values.at(0));
      files.push_back({{"path", listed.at(g.members[0].file_offset + f).at("path")}, {"tokens", count}});
    }
    out_file += g.members[0].n_files;
  }
  run["datasets"] = datasets;
  out.description["files"] = files;
  out.description["stats"] = meanings;
  out.description["run"] = run;
  return result;
}

}  // namespace moeforge
