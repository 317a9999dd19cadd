// `medeval verify PATH`: check a published run folder against its manifest.
#include <iostream>
#include <memory>

#include "audit/verify.h"
#include "cli/commands.h"

namespace medeval::cli {

Command AddVerifyCommand(CLI::App& app) {
  struct Flags {
    std::string path;
    std::string data;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "verify", "Recompute the SHA-256 of every file named in a run folder's manifest.json");
  sub->add_option("path", f->path, "Run folder (holding manifest.json)")->required();
  sub->add_option("--data", f->data, "The original questions, to check the inputs too");
  return {sub, [f]() -> int {
            auto r = VerifyRun(f->path, f->data);
            if (!r.ok()) {
              std::cerr << "medeval verify: " << r.status().message() << "\n";
              return kExitBadInput;
            }
            int bad = 0;
            for (const VerifiedFile& v : r->files) {
              if (v.state == "ok") continue;
              ++bad;
              std::cout << v.state << ": " << v.path << " (" << v.kind << ")";
              if (v.state == "changed") {
                std::cout << "\n  manifest " << v.expected << "\n  now      " << v.actual;
              }
              std::cout << "\n";
            }
            std::cout << r->files.size() - bad << " of " << r->files.size() << " files match "
                      << r->manifest << "\n";
            return r->ok() ? kExitOk : kExitFailed;
          }};
}

}  // namespace medeval::cli
