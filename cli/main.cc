// medeval: runs the MedBench medical-LLM benchmark against many models at
// once through a gRPC coordinator/worker system, and publishes every answer.
#include <CLI/CLI.hpp>
#include <iostream>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "common/version.h"

int main(int argc, char** argv) {
  medeval::cli::BlockTerminationSignals();
  // Debian's Abseil is built with lock-order (deadlock) checking on, which
  // updates a graph on every lock; the medeval binary turns it off. The test
  // executables keep the library's default, so code the tests run in their
  // own process is checked; medeval child processes they start are not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{
      "medeval: run the MedBench benchmark against OpenAI-compatible models, "
      "on one machine or a cluster, and publish every answer."};
  app.set_version_flag("--version", std::string("medeval ") + medeval::kVersion);
  app.require_subcommand(1);
  app.fallthrough(false);

  std::vector<medeval::cli::Command> commands = {
      medeval::cli::AddRunCommand(app),    medeval::cli::AddDemoCommand(app),
      medeval::cli::AddSimCommand(app),    medeval::cli::AddCoordinatorCommand(app),
      medeval::cli::AddWorkerCommand(app), medeval::cli::AddSubmitCommand(app),
      medeval::cli::AddStatusCommand(app), medeval::cli::AddFetchCommand(app),
      medeval::cli::AddAuditCommand(app),  medeval::cli::AddCompareCommand(app),
      medeval::cli::AddVerifyCommand(app), medeval::cli::AddProbeCommand(app),
      medeval::cli::AddBatchCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    // Usage errors are bad input (2); --help and --version exit 0.
    return code == 0 ? 0 : medeval::cli::kExitBadInput;
  }
  for (auto& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return medeval::cli::kExitBadInput;
}
