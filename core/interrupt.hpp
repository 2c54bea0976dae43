// Ctrl-C and kill leave no partial output behind: main() blocks SIGINT/SIGTERM/SIGHUP in every
// thread and a watcher thread waits for them, deletes the files registered as partial, and exits
// with status 130. (SIGKILL cannot be caught; partial files carry a ".partial" suffix so they
// never look like a finished checkpoint.)
#pragma once
#include <filesystem>

namespace moeforge {

void install_interrupt_cleanup();  // call once, first thing in main(), before any thread starts
// Creates (truncating) and registers a partial file in one step, under the same lock the cleanup
// takes, so an interruption can never miss a file; returns a writable descriptor.
int create_partial(const std::filesystem::path& file);
void untrack_partial(const std::filesystem::path& file);

}  // namespace moeforge
