// Ctrl-C and kill leave no partial output behind. A signal handler (whichever thread the kernel
// picks, including threads a library started before main) only writes to a pipe; a watcher
// thread then deletes every registered partial file and temporary directory and exits with
// status 130. SIGKILL cannot be caught: partial files carry a ".partial" suffix so they never look
// like a finished output.
#pragma once
#include <filesystem>
#include <functional>

namespace moeforge {

void install_interrupt_cleanup();  // once, first thing in main()

// Creates FILE exclusively (O_CREAT | O_EXCL | O_NOFOLLOW: never an existing file, never through a
// planted link) and registers it for removal on interrupt, under the lock the cleanup takes, so
// an interruption can never miss it. Returns the descriptor, or -1 with errno set.
int create_partial(const std::filesystem::path& file);
void untrack_partial(const std::filesystem::path& file);

// A directory moeforge created for itself (recipe intermediates): removed whole on interrupt.
void track_temporary_directory(const std::filesystem::path& dir);
void untrack_temporary_directory(const std::filesystem::path& dir);

// Runs fn with the cleanup held off: an interrupt during fn is acted on when fn returns, so a
// group of renames (an output's commit) is never cut in half.
void without_interruption(const std::function<void()>& fn);

}  // namespace moeforge
