#include "local/embedded_cluster.h"

#include <openssl/rand.h>

#include <map>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/records.h"
#include "worker/worker_metrics.h"

namespace medeval {

absl::StatusOr<std::unique_ptr<EmbeddedCluster>> EmbeddedCluster::Start(Options options) {
  std::unique_ptr<EmbeddedCluster> c(new EmbeddedCluster());
  Coordinator::Options copts;
  copts.listen = "127.0.0.1:0";
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof(secret)) != 1) {
    return absl::InternalError("cannot make a token for the local coordinator (no randomness)");
  }
  c->token_ = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(secret), sizeof(secret)));
  copts.token = c->token_;
  copts.state_dir = options.state_dir;
  copts.scheduler = options.scheduler;
  copts.metrics_listen = options.metrics_listen;
  copts.recover_all_runs = options.recover_all_runs;
  // One set of request metrics per model, shared by its workers.
  std::map<std::string, std::shared_ptr<WorkerMetrics>> metrics;
  if (!options.metrics_listen.empty()) {
    for (const WorkerGroup& g : options.groups) {
      auto& m = metrics[g.model];
      if (m == nullptr) {
        m = std::make_shared<WorkerMetrics>(g.model);
        copts.extra_metrics.push_back(m->registry());
      }
    }
  }
  auto coordinator = Coordinator::Start(std::move(copts));
  if (!coordinator.ok()) return coordinator.status();
  c->coordinator_ = std::move(*coordinator);
  const bool many = options.groups.size() > 1;
  for (const WorkerGroup& g : options.groups) {
    for (int i = 1; i <= g.count; ++i) {
      WorkerOptions w;
      w.coordinator = c->target();
      w.security = c->client_security();
      w.name = many ? absl::StrCat("local-", ModelFolderName(g.model), "-", i)
                    : absl::StrCat("local-", i);
      w.model = g.model;
      SetConcurrency(g.concurrency, g.max_concurrency, &w);
      w.adaptive_concurrency = g.adaptive_concurrency;
      w.batch = g.batch;
      w.backend = g.backend;
      if (auto m = metrics.find(g.model); m != metrics.end()) {
        w.on_attempt_done = [m = m->second](const AttemptReport& r) { m->OnAttempt(r); };
      }
      std::optional<ServeOptions> serve = g.serve;
      if (serve.has_value()) serve->log_prefix = absl::StrCat("[", w.name, " server]");
      auto worker = std::make_unique<ManagedWorker>(std::move(w), std::move(serve));
      absl::Status st = worker->Start();
      if (!st.ok()) return st;
      c->workers_.emplace_back(g.model, std::move(worker));
    }
  }
  return c;
}

EmbeddedCluster::~EmbeddedCluster() { Stop(absl::ZeroDuration()); }

std::string EmbeddedCluster::target() const {
  return absl::StrCat("127.0.0.1:", coordinator_->port());
}

ClientSecurity EmbeddedCluster::client_security() const {
  ClientSecurity s;
  s.token = token_;
  return s;
}

absl::Status EmbeddedCluster::ModelError(const std::string& model) {
  absl::Status first;
  for (auto& [m, w] : workers_) {
    if (m != model) continue;
    absl::Status st = w->error();
    if (st.ok()) return absl::OkStatus();  // one still works
    if (first.ok()) first = st;
  }
  return first;
}

void EmbeddedCluster::SetBatchCancelOnExit(bool cancel) {
  for (auto& [m, w] : workers_) w->SetBatchCancelOnExit(cancel);
}

void EmbeddedCluster::Stop(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  // Drain in parallel so the grace period is paid once.
  std::vector<std::thread> drains;
  for (auto& [m, w] : workers_) {
    ManagedWorker* worker = w.get();
    drains.emplace_back([worker, grace] { worker->Drain(grace); });
  }
  for (auto& t : drains) t.join();
  workers_.clear();
  if (coordinator_) coordinator_->Shutdown();
}

}  // namespace medeval
