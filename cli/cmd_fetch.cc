// `medeval fetch`: download a finished run's files.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/security_flags.h"
#include "client/coordinator_client.h"
#include "common/file_util.h"
#include "common/records.h"

namespace medeval::cli {

Command AddFetchCommand(CLI::App& app) {
  struct Flags {
    ClientSecurityFlags security;
    std::string run_id;
    std::string out;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "fetch", "Download a finished run's files to OUT/<model>/ (same layout as `run`)");
  f->security.Add(sub);
  sub->add_option("run_id", f->run_id, "Run id (from submit or status)")->required();
  sub->add_option("--out", f->out, "Output folder")->required();
  return {sub, [f]() -> int {
            auto security = f->security.Resolve();
            if (!security.ok()) {
              std::cerr << "medeval fetch: " << security.status().message() << "\n";
              return kExitBadInput;
            }
            auto client = CoordinatorClient::Connect(f->security.coordinator, *security);
            if (!client.ok()) {
              std::cerr << "medeval fetch: " << client.status().message() << "\n";
              return kExitBadInput;
            }
            auto st = (*client)->Status(f->run_id);
            if (!st.ok() || st->runs_size() != 1) {
              std::cerr << "medeval fetch: "
                        << (st.ok() ? "no such run" : std::string(st.status().message())) << "\n";
              return kExitFailed;
            }
            const std::string dir = JoinPath(f->out, ModelFolderName(st->runs(0).model()));
            auto files = (*client)->Fetch(f->run_id, dir);
            if (!files.ok()) {
              std::cerr << "medeval fetch: " << files.status().message() << "\n";
              return kExitFailed;
            }
            for (const auto& file : *files) std::cout << JoinPath(dir, file) << "\n";
            return kExitOk;
          }};
}

}  // namespace medeval::cli
