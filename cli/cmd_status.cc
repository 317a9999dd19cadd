// `medeval status`: runs and workers of a coordinator.
#include <iostream>
#include <memory>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/security_flags.h"
#include "client/batch_view.h"
#include "client/coordinator_client.h"
#include "client/progress.h"
#include "client/status_json.h"
#include "client/wait.h"
#include "common/cost.h"
#include "common/endpoint_state.h"
#include "common/utf8.h"

namespace medeval::cli {

Command AddStatusCommand(CLI::App& app) {
  struct Flags {
    ClientSecurityFlags security;
    std::string run_id;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand("status", "Show runs (done/total, rate, ETA) and workers");
  f->security.Add(sub);
  sub->add_option("run_id", f->run_id, "Only this run (with its failed questions)");
  sub->add_flag("--json", f->json, "Print the status as JSON");
  return {
      sub, [f]() -> int {
        auto security = f->security.Resolve();
        if (!security.ok()) {
          std::cerr << "medeval status: " << security.status().message() << "\n";
          return kExitBadInput;
        }
        auto client = CoordinatorClient::Connect(f->security.coordinator, *security);
        if (!client.ok()) {
          std::cerr << "medeval status: " << client.status().message() << "\n";
          return kExitBadInput;
        }
        auto st = (*client)->Status(f->run_id);
        if (!st.ok()) {
          std::cerr << "medeval status: " << st.status().message() << "\n";
          return st.status().code() == absl::StatusCode::kNotFound ? kExitBadInput : kExitFailed;
        }
        if (f->json) {
          std::cout << ProtoToJson(*st).dump(2) << "\n";
          return kExitOk;
        }
        std::cout << absl::StrFormat("%-22s %-28s %-10s %-10s %13s %9s %7s %6s %7s %9s\n", "RUN",
                                     "MODEL", "TRACK", "STATE", "DONE/TOTAL", "RATE/s", "ETA",
                                     "FAILED", "RETRIES", "TRUNCATED");
        // Names, ids and errors come from the network: escaped, so they
        // cannot drive the terminal.
        for (const auto& r : st->runs()) {
          std::cout << absl::StrFormat(
              "%-22s %-28s %-10s %-10s %13s %9.1f %7s %6d %7d %9d\n", EscapeControl(r.run_id()),
              EscapeControl(r.model()), EscapeControl(r.track()), EscapeControl(r.state()),
              absl::StrCat(r.answered() + r.failed(), "/", r.total()), r.rate(),
              r.state() == "running" ? ShortDuration(r.eta_s()) : "-", r.failed(), r.retries(),
              r.truncated());
          if (r.truncated() > 0 && !f->run_id.empty()) {
            std::cout << "  truncated: " << r.truncated()
                      << " answers cut off at max_tokens (finish_reason length); raise or unset "
                         "max_tokens\n";
          }
          if (r.endpoint_state().down()) {
            std::cout << "  " << EndpointDownText(r.endpoint_state()) << "\n";
          }
          if (r.paused_until_unix_ms() > 0) {
            std::cout << "  paused until "
                      << absl::FormatTime("%H:%M:%S",
                                          absl::FromUnixMillis(r.paused_until_unix_ms()),
                                          absl::LocalTimeZone())
                      << " (429 with Retry-After)\n";
          }
          if (r.concurrency_limit() > 0 && r.state() == "running") {
            std::cout << "  " << ConcurrencyText(r) << ": " << EscapeControl(r.concurrency_reason())
                      << "\n";
          }
          // Unfinished batches always; finished ones too for one run.
          const absl::Time now = absl::Now();
          for (const auto& b : r.batches()) {
            if (f->run_id.empty() && BatchFinished(b)) continue;
            std::cout << "  " << BatchText(b, now) << "\n";
          }
          if (r.has_cost()) std::cout << "  cost so far " << CostText(r.cost()) << "\n";
          if (!f->run_id.empty()) {
            if (!r.error().empty()) std::cout << "  error: " << EscapeControl(r.error()) << "\n";
            for (const auto& q : r.failed_questions()) {
              std::cout << "  failed: " << EscapeControl(q) << "\n";
            }
          }
        }
        if (st->runs().empty()) std::cout << "(no runs)\n";
        std::set<std::string> told;
        for (const auto& r : st->runs()) {
          if (r.state() != "running" || !told.insert(r.model()).second) continue;
          const std::string notice = NoWorkerNotice(r.model(), *st);
          if (!notice.empty()) std::cout << "note: " << notice << "\n";
        }
        std::cout << "\n"
                  << absl::StrFormat("%-26s %-28s %9s %9s  %s\n", "WORKER", "MODEL", "IN FLIGHT",
                                     "ANSWERED", "ENDPOINT / STATE");
        for (const auto& w : st->workers()) {
          std::string state = EscapeControl(w.endpoint());
          if (w.draining()) state += " (draining)";
          if (!w.connected()) state += " (gone)";
          if (!w.error().empty()) state += absl::StrCat(" error: ", EscapeControl(w.error()));
          if (w.endpoint_state().down()) state += " " + EndpointDownText(w.endpoint_state());
          std::cout << absl::StrFormat(
              "%-26s %-28s %9s %9d  %s\n", EscapeControl(w.worker_id()), EscapeControl(w.model()),
              // Auto concurrency: of its share now.
              absl::StrCat(w.leased(), "/",
                           w.concurrency() > 0 ? w.concurrency() : w.max_inflight()),
              w.answered(), state);
        }
        if (st->workers().empty()) std::cout << "(no workers connected)\n";
        return kExitOk;
      }};
}

}  // namespace medeval::cli
