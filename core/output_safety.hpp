// The rules every output of moeforge obeys, in one place (README "Output checkpoints"):
// - an output is refused if it is, contains, or lies inside an input (paths compared after
//   resolving symlinks), or if two outputs of one command coincide or nest;
// - an existing output is refused without --force; with --force a file is replaced, and a
//   directory only if it is empty or moeforge wrote it (its moeforge.json lists the files), and then
//   only those files are removed: a directory holding anything else is refused;
// - a directory being written is locked (flock) against a second writer;
// - every file is created as NAME.partial (O_CREAT | O_EXCL | O_NOFOLLOW), fsynced, and renamed
//   into place when every output of the command is complete; interrupts remove partial files.
#pragma once
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace moeforge {

// The marker a checkpoint directory written by moeforge holds: provenance plus "files".
inline constexpr const char* kMarkerName = "moeforge.json";
inline constexpr const char* kPartialSuffix = ".partial";

struct OutputPaths {
  std::vector<std::filesystem::path> inputs;       // files and directories the command reads
  std::vector<std::filesystem::path> directories;  // checkpoint directories it writes
  std::vector<std::filesystem::path> files;        // single files it writes
};

// Throws (UsageError, or IoError for file-system trouble) when any rule above refuses the outputs.
// Nothing is created. Run before any work, and again by the writers under their lock.
void check_outputs(const OutputPaths& paths, bool force);

// "a/b/" → "a/b"; an empty path is refused. Outputs are named without trailing slashes.
std::filesystem::path output_path(const std::string& text);

// The files of DIR that a new moeforge output may remove: those its moeforge.json lists (or, for
// a marker without a list, the names moeforge writes). Throws when DIR holds anything else.
std::set<std::string> replaceable_files(const std::filesystem::path& dir);

// Every file of one command: created as partial files and renamed together by commit().
class OutputTransaction {
 public:
  explicit OutputTransaction(bool force) : force_(force) {}
  ~OutputTransaction();  // an uncommitted transaction removes its partial files
  OutputTransaction(const OutputTransaction&) = delete;
  OutputTransaction& operator=(const OutputTransaction&) = delete;

  // FINAL.partial, created exclusively; the descriptor stays owned by the transaction.
  int create(const std::filesystem::path& final_path);
  // create + write all bytes.
  void write(const std::filesystem::path& final_path, std::string_view bytes);
  // Files of an earlier moeforge output that the new one does not rewrite: removed at commit.
  void remove_at_commit(const std::filesystem::path& stale) { stale_.push_back(stale); }
  // fsyncs every file, then (with interrupts held off) removes the stale files and renames every
  // partial file into place in creation order. Without force an existing final file is never
  // replaced (renameat2 RENAME_NOREPLACE).
  void commit();

 private:
  struct Pending {
    std::filesystem::path partial, final_path;
    int fd;
  };
  bool force_;
  std::vector<Pending> pending_;
  std::vector<std::filesystem::path> stale_;
};

// An output checkpoint directory held for writing: created if missing, locked against a second
// writer (until destruction), and its replaceable files scheduled for removal in `tx`.
class OutputDirectory {
 public:
  OutputDirectory(const std::filesystem::path& dir, bool force, OutputTransaction& tx, const std::set<std::string>& rewritten);
  ~OutputDirectory();
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;

 private:
  int lock_fd_ = -1;
};

// One file, atomically: the common case of a transaction with a single file.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, bool force);

}  // namespace moeforge
