// `medeval coordinator`: the long-lived service that workers join and runs
// are submitted to.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "common/file_util.h"
#include "common/grpc_util.h"
#include "common/log.h"
#include "coordinator/coordinator.h"

namespace medeval::cli {

Command AddCoordinatorCommand(CLI::App& app) {
  struct Flags {
    Coordinator::Options o;
    std::string token_file;
    double heartbeat_timeout_s = 30;
    double backup_after_s = 10;
    bool no_backups = false;
    double startup_grace_s = 5;
    double max_pause_s = 600;
    double concurrency_window_s = 5;
    std::string port_file;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub =
      app.add_subcommand("coordinator", "Run the coordinator service that workers connect to");
  sub->add_option("--listen", f->o.listen, "HOST:PORT to serve gRPC on")->required();
  sub->add_option("--state-dir", f->o.state_dir, "Folder for runs, journals and outputs")
      ->required();
  sub->add_option("--port-file", f->port_file, "Write the bound port to this file");
  sub->add_option("--metrics-listen", f->o.metrics_listen,
                  "HOST:PORT for Prometheus /metrics and the /healthz and /readyz probes");
  sub->add_option("--tls-cert", f->o.tls.cert_file, "Server certificate (enables TLS)");
  sub->add_option("--tls-key", f->o.tls.key_file, "Server private key");
  sub->add_option("--client-ca", f->o.tls.client_ca_file,
                  "CA that client certificates must be signed by (mutual TLS)");
  sub->add_option("--token-file", f->token_file, "Require this shared token from every client");
  sub->add_option("--heartbeat-timeout", f->heartbeat_timeout_s,
                  "Seconds without a message after which a worker is presumed gone and its "
                  "questions are handed to others")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--backup-after", f->backup_after_s,
                  "Seconds before an outstanding question at the tail of a run gets a backup "
                  "copy on an idle worker (at least; scaled to the run's typical latency)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("--no-backups", f->no_backups, "Never ask a question twice at the tail");
  sub->add_option("--max-retry-after", f->max_pause_s,
                  "Longest model-wide pause (seconds) a worker's 429 Retry-After may cause")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--startup-grace", f->startup_grace_s,
                  "Seconds to wait after a restart for workers to reclaim their questions")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--concurrency-window", f->concurrency_window_s,
                  "Auto concurrency: seconds of a model's answers judged before its limit "
                  "changes (longer: steadier, slower to find the knee)")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  return {sub, [f]() -> int {
            if (!f->token_file.empty()) {
              auto token = ReadTokenFile(f->token_file);
              if (!token.ok()) {
                std::cerr << "medeval coordinator: " << token.status().message() << "\n";
                return kExitBadInput;
              }
              f->o.token = *token;
            }
            auto& s = f->o.scheduler;
            s.heartbeat_timeout = absl::Seconds(f->heartbeat_timeout_s);
            s.heartbeat_interval = std::min(absl::Seconds(5), s.heartbeat_timeout / 4);
            s.backup_min_age = absl::Seconds(f->backup_after_s);
            s.backups = !f->no_backups;
            s.startup_grace = absl::Seconds(f->startup_grace_s);
            s.max_pause = absl::Seconds(f->max_pause_s);
            s.auto_concurrency.window = absl::Seconds(f->concurrency_window_s);
            auto c = Coordinator::Start(f->o);
            if (!c.ok()) {
              std::cerr << "medeval coordinator: " << c.status().message() << "\n";
              return c.status().code() == absl::StatusCode::kInvalidArgument ? kExitBadInput
                                                                             : kExitFailed;
            }
            if (!f->port_file.empty()) {
              absl::Status st =
                  WriteFileAtomic(f->port_file, absl::StrCat((*c)->port(), "\n"), false);
              if (!st.ok()) {
                std::cerr << "medeval coordinator: " << st.message() << "\n";
                return kExitFailed;
              }
            }
            std::string host = f->o.listen.substr(0, f->o.listen.rfind(':'));
            std::cout << "medeval coordinator listening on " << host << ":" << (*c)->port()
                      << (f->o.tls.cert_file.empty() ? "" : " (TLS)")
                      << (f->o.token.empty() ? "" : ", token required");
            if ((*c)->metrics_port() != 0) {
              std::cout << "; metrics on "
                        << f->o.metrics_listen.substr(0, f->o.metrics_listen.rfind(':')) << ":"
                        << (*c)->metrics_port();
            }
            std::cout << std::endl;
            for (const auto& e : (*c)->recovery_errors()) {
              std::cerr << "medeval coordinator: not recovered: " << e << "\n";
            }
            int sig = WaitForTerminationSignal();
            MEDEVAL_LOG(INFO) << "signal " << sig << ": shutting down";
            (*c)->Shutdown();
            return kExitOk;
          }};
}

}  // namespace medeval::cli
