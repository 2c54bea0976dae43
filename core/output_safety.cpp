#include "core/output_safety.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <regex>

#include "core/error.hpp"
#include "core/file_io.hpp"
#include "core/interrupt.hpp"
#include "core/strings.hpp"

namespace moeforge {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int e) { return std::strerror(e); }

fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) throw IoError(p.string() + ": cannot resolve the path: " + ec.message());
  return r;
}

// a == b, or a lies inside b (component-wise).
bool within(const fs::path& a, const fs::path& b) {
  auto ia = a.begin(), ib = b.begin();
  for (; ib != b.end(); ++ia, ++ib)
    if (ia == a.end() || *ia != *ib) return false;
  return true;
}

bool is_partial_name(const std::string& n) {
  size_t k = std::strlen(kPartialSuffix);
  return n.size() > k && n.compare(n.size() - k, k, kPartialSuffix) == 0;
}

// Names moeforge writes into a checkpoint directory, for markers of 0.1 that have no file list.
bool moeforge_file_name(const std::string& n) {
  static const std::regex kNames(
      "model(-[0-9]{5}-of-[0-9]{5})?\\.safetensors|model\\.safetensors\\.index\\.json|config\\.json|moeforge\\.json|"
      "moeforge-recipe\\.yaml|tokenizer\\.json|tokenizer_config\\.json|tokenizer\\.model|special_tokens_map\\.json|"
      "added_tokens\\.json|vocab\\.json|merges\\.txt|generation_config\\.json|chat_template\\.jinja|chat_template\\.json|"
      "preprocessor_config\\.json");
  return std::regex_match(n, kNames);
}

std::string entry_kind(const fs::directory_entry& e) {
  std::error_code ec;
  if (e.is_symlink(ec)) return "symbolic link ";
  if (e.is_directory(ec)) return "directory ";
  return "";
}

void check_one_file(const fs::path& out, bool force) {
  std::error_code ec;
  auto st = fs::symlink_status(out, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw IoError(out.string() + ": cannot inspect: " + ec.message());
  if (!fs::exists(st)) {
    fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(parent)) throw IoError(out.string() + ": the folder " + parent.string() + " does not exist");
    return;
  }
  if (fs::is_directory(st)) throw UsageError(out.string() + ": is a directory; hint: name a file to write");
  if (!force) throw UsageError(out.string() + ": exists; hint: pass --force to replace it");
  if (!fs::is_regular_file(st) && !fs::is_symlink(st)) throw UsageError(out.string() + ": exists and is not a regular file; it is not replaced");
}

void check_one_directory(const fs::path& out, bool force) {
  std::error_code ec;
  auto st = fs::status(out, ec);
  if (!fs::exists(st)) return;
  if (!fs::is_directory(st)) throw UsageError(out.string() + ": exists and is not a directory");
  if (fs::is_empty(out, ec)) return;
  if (!force) throw UsageError(out.string() + ": exists and is not empty; hint: pass --force to replace a moeforge output");
  replaceable_files(out);  // throws when it holds anything moeforge did not write
}

}  // namespace

fs::path output_path(const std::string& text) {
  if (text.empty()) throw UsageError("an output path is empty");
  std::string t = text;
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  return fs::path(t);
}

std::set<std::string> replaceable_files(const fs::path& dir) {
  std::set<std::string> listed;
  fs::path marker = dir / kMarkerName;
  std::error_code ec;
  bool has_marker = fs::is_regular_file(fs::symlink_status(marker, ec));
  if (has_marker) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_regular_file(marker));
    } catch (const nlohmann::json::exception&) {
      throw UsageError(marker.string() + ": not valid JSON, so " + dir.string() + " is not known to be a moeforge output; it is not replaced");
    }
    if (j.is_object() && j.contains("files") && j["files"].is_array()) {
      for (const auto& f : j["files"])
        if (f.is_string() && f.get<std::string>().find('/') == std::string::npos) listed.insert(f.get<std::string>());
      listed.insert(kMarkerName);
    }
  }
  std::vector<std::string> foreign;
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    bool ours = has_marker && (listed.empty() ? moeforge_file_name(n) : listed.count(n) > 0);
    if (ours && e.is_regular_file(ec) && !e.is_symlink(ec)) out.insert(n);
    else foreign.push_back(entry_kind(e) + n);
  }
  if (!has_marker)
    throw UsageError(dir.string() + ": not written by moeforge (no " + kMarkerName + "); it is not replaced. hint: choose a new or empty directory");
  if (!foreign.empty())
    throw UsageError(dir.string() + ": holds files moeforge did not write there (" + join(foreign, ", ") +
                     "); it is not replaced. hint: move them away" +
                     (std::any_of(foreign.begin(), foreign.end(), is_partial_name) ? " (*.partial files are left by a killed run)" : ""));
  return out;
}

void check_outputs(const OutputPaths& paths, bool force) {
  struct Resolved {
    fs::path given, real;
    bool directory;
  };
  std::vector<Resolved> outs, ins;
  for (const auto& d : paths.directories) outs.push_back({d, resolved(d), true});
  for (const auto& f : paths.files) outs.push_back({f, resolved(f), false});
  std::error_code ec;
  for (const auto& i : paths.inputs) ins.push_back({i, resolved(i), fs::is_directory(i, ec)});
  for (const auto& o : outs) {
    for (const auto& i : ins) {
      if (o.real == i.real) throw UsageError(o.given.string() + ": is also an input of this command; inputs are never modified (hint: write elsewhere)");
      if (within(i.real, o.real))
        throw UsageError(o.given.string() + ": contains the input " + i.given.string() + "; inputs are never modified (hint: write elsewhere)");
      if (i.directory && within(o.real, i.real))
        throw UsageError(o.given.string() + ": lies inside the input directory " + i.given.string() + "; inputs are never modified (hint: write elsewhere)");
    }
    for (const auto& p : outs)
      if (&p != &o && within(o.real, p.real))
        throw UsageError(o.given.string() + (o.real == p.real ? ": is written twice by this command" : ": lies inside the output " + p.given.string()) +
                         "; hint: give every output its own path");
    if (o.directory) check_one_directory(o.given, force);
    else check_one_file(o.given, force);
  }
}

OutputTransaction::~OutputTransaction() {
  std::error_code ec;
  for (auto& p : pending_) {
    if (p.fd >= 0) ::close(p.fd);
    fs::remove(p.partial, ec);
    untrack_partial(p.partial);
  }
}

int OutputTransaction::create(const fs::path& final_path) {
  fs::path partial = final_path.string() + kPartialSuffix;
  int fd = create_partial(partial);
  if (fd < 0) {
    int e = errno;
    if (e == EEXIST || e == ELOOP)
      throw IoError(partial.string() + ": already exists (another moeforge writing the same output, a killed run, or a planted file); "
                    "it is not touched. hint: check no other run writes here, then remove it");
    throw IoError(partial.string() + ": cannot create: " + errno_text(e));
  }
  pending_.push_back({partial, final_path, fd});
  return fd;
}

void OutputTransaction::write(const fs::path& final_path, std::string_view bytes) {
  int fd = create(final_path);
  write_all(fd, bytes.data(), bytes.size(), 0, final_path.string() + kPartialSuffix);
}

void OutputTransaction::commit() {
  for (auto& p : pending_) {
    if (::fsync(p.fd) != 0) throw IoError(p.partial.string() + ": fsync failed: " + errno_text(errno));
    ::close(p.fd);
    p.fd = -1;
  }
  without_interruption([&] {
    for (const auto& s : stale_)
      if (::unlink(s.c_str()) != 0 && errno != ENOENT) throw IoError(s.string() + ": cannot remove: " + errno_text(errno));
    std::set<fs::path> dirs;
    for (const auto& p : pending_) {
      unsigned flags = force_ ? 0 : RENAME_NOREPLACE;
      if (::syscall(SYS_renameat2, AT_FDCWD, p.partial.c_str(), AT_FDCWD, p.final_path.c_str(), flags) != 0) {
        int e = errno;
        throw IoError(p.final_path.string() + (e == EEXIST ? ": appeared while moeforge was writing it; it is not replaced (hint: --force)"
                                                           : ": cannot rename into place: " + errno_text(e)));
      }
      untrack_partial(p.partial);
      dirs.insert(p.final_path.parent_path().empty() ? fs::path(".") : p.final_path.parent_path());
    }
    pending_.clear();
    for (const auto& d : dirs) {
      int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
      }
    }
  });
}

OutputDirectory::OutputDirectory(const fs::path& dir, bool force, OutputTransaction& tx, const std::set<std::string>& rewritten) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create the directory: " + ec.message());
  lock_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd_ < 0) throw IoError(dir.string() + ": cannot open: " + errno_text(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw IoError(dir.string() + ": another moeforge process is writing this directory; hint: wait for it or choose another output");
  }
  // Checked again under the lock: a writer that finished meanwhile left a checkpoint here.
  check_one_directory(dir, force);
  if (fs::is_empty(dir, ec)) return;
  for (const auto& name : replaceable_files(dir))
    if (!rewritten.count(name)) tx.remove_at_commit(dir / name);
}

OutputDirectory::~OutputDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void write_file_atomically(const fs::path& path, std::string_view bytes, bool force) {
  check_one_file(path, force);
  OutputTransaction tx(force);
  tx.write(path, bytes);
  tx.commit();
}

}  // namespace moeforge
