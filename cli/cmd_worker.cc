// `medeval worker`: serve one model for a coordinator, from any machine.
#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/security_flags.h"
#include "cli/signals.h"
#include "common/log.h"
#include "worker/worker.h"

namespace medeval::cli {

Command AddWorkerCommand(CLI::App& app) {
  struct Flags {
    ClientSecurityFlags security;
    EndpointFlags endpoint;
    std::string name;
    std::string served_model;
    int concurrency = 16;
    int prefetch = -1;
    double drain_grace_s = 60;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "worker", "Answer a coordinator's questions with one model (connects out to it)");
  f->security.Add(sub);
  f->endpoint.Add(sub);
  sub->add_option("--name", f->name, "Worker name, unique per coordinator (default: host-pid)");
  sub->add_option("--served-model-name", f->served_model,
                  "Model name to send to the server, if it differs from --model");
  sub->add_option("--concurrency", f->concurrency, "Requests in flight to the model")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  sub->add_option("--prefetch", f->prefetch,
                  "Questions queued here beyond those in flight (default: concurrency/4)");
  sub->add_option("--drain-grace", f->drain_grace_s,
                  "On SIGTERM, seconds to let questions in flight finish")
      ->capture_default_str();
  return {sub, [f]() -> int {
            if (f->security.coordinator.empty()) {
              if (const char* env = std::getenv("MEDEVAL_COORDINATOR")) f->security.coordinator = env;
            }
            if (f->security.coordinator.empty()) {
              std::cerr << "medeval worker: --coordinator HOST:PORT is required\n";
              return kExitBadInput;
            }
            absl::Status st = f->endpoint.Resolve();
            auto backend = st.ok() ? f->endpoint.Backend() : absl::StatusOr<BackendConfig>(st);
            auto security = f->security.Resolve();
            if (!backend.ok() || !security.ok()) {
              std::cerr << "medeval worker: "
                        << (!backend.ok() ? backend.status() : security.status()).message() << "\n";
              return kExitBadInput;
            }
            WorkerOptions o;
            o.coordinator = f->security.coordinator;
            o.security = *security;
            o.name = f->name;
            o.model = f->endpoint.model;
            o.concurrency = f->concurrency;
            o.prefetch = f->prefetch;
            o.backend = *backend;
            o.backend.served_model = f->served_model;
            auto worker = std::make_shared<Worker>(o);
            st = worker->Start();
            if (!st.ok()) {
              std::cerr << "medeval worker: " << st.message() << "\n";
              return kExitBadInput;
            }
            const absl::Duration grace = absl::Seconds(f->drain_grace_s);
            WatchTerminationSignals([worker, grace](int sig) {
              MEDEVAL_LOG(INFO) << "signal " << sig << ": draining";
              std::thread([worker, grace] { worker->Drain(grace); }).detach();
            });
            st = worker->Wait();
            if (!st.ok()) {
              std::cerr << "medeval worker: " << st.message() << "\n";
              return kExitFailed;
            }
            return kExitOk;
          }};
}

}  // namespace medeval::cli
