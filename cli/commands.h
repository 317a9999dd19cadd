// The subcommands of the `medeval` executable. Each registers its flags on
// the CLI11 app and returns the function that runs it once parsed; the
// function returns the process exit code (0 ok, 1 failed, 2 bad input).
//
// Files in cli/ hold flag parsing and wiring only; the work is in libraries.
#ifndef MEDEVAL_CLI_COMMANDS_H_
#define MEDEVAL_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>

namespace medeval::cli {

using CommandFn = std::function<int()>;

struct Command {
  CLI::App* app = nullptr;
  CommandFn run;
};

Command AddRunCommand(CLI::App& app);
Command AddDemoCommand(CLI::App& app);
Command AddSimCommand(CLI::App& app);
Command AddCoordinatorCommand(CLI::App& app);
Command AddWorkerCommand(CLI::App& app);
Command AddSubmitCommand(CLI::App& app);
Command AddStatusCommand(CLI::App& app);
Command AddFetchCommand(CLI::App& app);
Command AddAuditCommand(CLI::App& app);
Command AddCompareCommand(CLI::App& app);
Command AddVerifyCommand(CLI::App& app);
Command AddBatchCommand(CLI::App& app);
Command AddProbeCommand(CLI::App& app);

// Exit codes shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitInterrupted = 130;

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_COMMANDS_H_
