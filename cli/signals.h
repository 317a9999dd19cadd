// Termination signals (SIGINT, SIGTERM) for long-running commands.
//
// Call BlockTerminationSignals() first thing in main, before any thread
// starts, so every thread inherits the mask and only the watcher sees them.
// Thread-safe after that.
#ifndef MEDEVAL_CLI_SIGNALS_H_
#define MEDEVAL_CLI_SIGNALS_H_

#include <functional>

namespace medeval::cli {

void BlockTerminationSignals();

// Blocks the calling thread until SIGINT or SIGTERM; returns the signal.
int WaitForTerminationSignal();

// Starts a detached thread that calls `on_signal(signo)` for each SIGINT or
// SIGTERM received. A second SIGINT while the first is handled exits at once
// with code 130 (the user insists).
void WatchTerminationSignals(std::function<void(int)> on_signal);

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_SIGNALS_H_
