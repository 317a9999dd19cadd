#include "coordinator/coordinator.h"

#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/http_headers.h"
#include "common/log.h"
#include "common/track.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/run_output.h"
#include "coordinator/run_seed.h"
#include "coordinator/service.h"

namespace medeval {
namespace {

constexpr double kDefaultTimeoutS = 600;
constexpr int kDefaultMaxAttempts = 6;
// Open calls get this long to finish when the coordinator stops.
constexpr absl::Duration kShutdownDeadline = absl::Seconds(2);

absl::Status CheckSpec(const v1::RunSpec& spec) {
  if (spec.model().empty()) return absl::InvalidArgumentError("the run names no model");
  for (char c : spec.model()) {
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("the model name holds control characters");
    }
  }
  auto track = ParseTrack(spec.track());
  if (!track.ok()) return track.status();
  const v1::RequestParams& p = spec.params();
  if (p.timeout_s() < 0) return absl::InvalidArgumentError("timeout must be positive");
  if (p.max_attempts() < 0) return absl::InvalidArgumentError("max_attempts must be positive");
  if (p.has_temperature() && (p.temperature() < 0 || p.temperature() > 2)) {
    return absl::InvalidArgumentError("temperature must be between 0 and 2");
  }
  if (p.has_max_tokens() && p.max_tokens() <= 0) {
    return absl::InvalidArgumentError("max_tokens must be positive");
  }
  for (const auto& [name, value] : p.extra_headers()) {
    absl::Status st = CheckHeader(name, value, "a request header");
    if (!st.ok()) return st;
    if (IsCredentialHeader(name)) {
      // The spec is saved and published with the result; a credential
      // belongs to the workers that send it.
      return absl::InvalidArgumentError(
          absl::StrCat("request header '", name,
                       "' is a credential: runs never store credentials; give it to the workers "
                       "(--header-env, or header_env in the models file)"));
    }
  }
  if (spec.pdf().max_pages() < 0 || spec.pdf().max_pages() > 64) {
    return absl::InvalidArgumentError("PDF max pages must be between 1 and 64");
  }
  if (spec.pdf().dpi() != 0 && (spec.pdf().dpi() < 36 || spec.pdf().dpi() > 600)) {
    return absl::InvalidArgumentError("PDF dpi must be between 36 and 600");
  }
  return absl::OkStatus();
}

}  // namespace

Coordinator::Coordinator(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(Options options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state-dir is required");
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options)));
  absl::Status st = c->Init();
  if (!st.ok()) return st;
  return c;
}

absl::Status Coordinator::Init() {
  auto state = StateDir::Open(options_.state_dir);
  if (!state.ok()) return state.status();
  state_ = std::move(*state);
  if (absl::Status st = StartOps(); !st.ok()) return st;
  journal_ = std::make_unique<JournalWriter>();
  executor_ = std::make_unique<Executor>(2);
  Scheduler::Options sopts = options_.scheduler;
  sopts.on_run_complete = [this](const std::string& id) {
    executor_->Post([this, id] { Merge(id); });
  };
  scheduler_ = std::make_unique<Scheduler>(std::move(sopts), journal_.get());
  if (options_.recover_all_runs) Recover();

  auto creds = MakeServerCredentials(options_.tls);
  if (!creds.ok()) return creds.status();
  CoordinatorService::Backend backend;
  backend.token = options_.token;
  backend.max_upload_bytes = options_.max_upload_bytes;
  backend.scheduler = scheduler_.get();
  backend.executor = executor_.get();
  backend.create_run = [this](v1::RunSpec spec, std::vector<UploadedFile> files) {
    return CreateRun(std::move(spec), std::move(files));
  };
  service_ = std::make_unique<CoordinatorService>(std::move(backend));
  // The standard grpc.health.v1 service, for gRPC probes and load balancers.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(&builder);
  builder.AddListeningPort(options_.listen, *creds, &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, " (address in use or not local?)"));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  ticker_ = std::thread([this] { TickLoop(); });
  ready_ = true;
  return absl::OkStatus();
}

absl::Status Coordinator::StartOps() {
  if (options_.metrics_listen.empty()) return absl::OkStatus();
  OpsServer::Options o;
  o.listen = options_.metrics_listen;
  o.collectables.push_back(std::make_shared<CoordinatorMetrics>(
      [this]() -> Scheduler* { return ready_.load() ? scheduler_.get() : nullptr; }));
  for (const auto& c : options_.extra_metrics) o.collectables.push_back(c);
  o.live = [this]() -> absl::Status {
    return shut_down_.load() ? absl::UnavailableError("shutting down") : absl::OkStatus();
  };
  o.ready = [this]() -> absl::Status {
    if (shut_down_.load()) return absl::UnavailableError("shutting down");
    if (!ready_.load()) return absl::UnavailableError("recovering runs from the journal");
    return absl::OkStatus();
  };
  auto ops = OpsServer::Start(std::move(o));
  if (!ops.ok()) return ops.status();
  ops_ = std::move(*ops);
  return absl::OkStatus();
}

int Coordinator::metrics_port() const { return ops_ != nullptr ? ops_->port() : 0; }

void Coordinator::Recover() {
  auto ids = state_->ListRuns();
  if (!ids.ok()) {
    recovery_errors_.push_back(std::string(ids.status().message()));
    return;
  }
  for (const std::string& id : *ids) {
    absl::Time start = absl::Now();
    auto spec = state_->ReadSpec(id);
    absl::StatusOr<LoadedRun> run =
        spec.ok() ? LoadStoredRun(*spec) : absl::StatusOr<LoadedRun>(spec.status());
    absl::Status st = run.ok() ? scheduler_->AddRun(std::move(*run)) : run.status();
    if (!st.ok()) {
      MEDEVAL_LOG(ERROR) << "cannot recover run " << id << ": " << st.message();
      recovery_errors_.push_back(absl::StrCat(id, ": ", st.message()));
      if (spec.ok() && !spec->idempotency_key().empty()) {
        absl::MutexLock lock(&submit_mu_);  // uncontended: nothing is served yet
        unloadable_[spec->idempotency_key()] = {id, st};
      }
      continue;
    }
    MEDEVAL_LOG(DEBUG) << "recovered run " << id << " in " << absl::Now() - start;
  }
}

absl::StatusOr<LoadedRun> Coordinator::LoadStoredRun(const v1::RunSpec& spec) {
  auto run = LoadRun(*state_, spec);
  if (!run.ok()) return run.status();
  // A VLM run is never asked without its images: they (and the rendered PDF
  // pages) are loaded again, or the run does not come back.
  auto images = LoadRunImages(*state_, spec, *run->suite);
  if (!images.ok()) return images.status();
  run->images = std::move(*images);
  return run;
}

absl::StatusOr<std::string> Coordinator::RecoverRunByKey(const std::string& key) {
  auto ids = state_->ListRuns();
  if (!ids.ok()) return ids.status();
  // Run ids sort by creation time: the latest run of the key wins.
  for (auto it = ids->rbegin(); it != ids->rend(); ++it) {
    auto spec = state_->ReadSpec(*it);
    if (!spec.ok() || spec->idempotency_key() != key) continue;
    auto run = LoadStoredRun(*spec);
    if (!run.ok()) {
      // Starting over would pay for every answer again: the submission
      // repairs it (its input restores a damaged copy) or is refused.
      unloadable_[key] = {*it, run.status()};
      return std::string();
    }
    absl::Status st = scheduler_->AddRun(std::move(*run));
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("cannot continue run ", *it, " stored in ",
                                                  state_->root(), ": ", st.message()));
    }
    MEDEVAL_LOG(INFO) << "recovered run " << *it;
    return *it;
  }
  return std::string();
}

void Coordinator::TickLoop() {
  while (true) {
    {
      absl::MutexLock lock(&tick_mu_);
      tick_mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick_interval);
      if (stopping_) return;
    }
    scheduler_->Tick();
  }
}

void Coordinator::Merge(const std::string& run_id) {
  auto snap = scheduler_->Snapshot(run_id);
  absl::Status st = snap.ok() ? WriteRunOutputs(*snap, state_->InputDir(run_id)) : snap.status();
  scheduler_->FinishMerge(run_id, st);
}

absl::StatusOr<v1::SubmitResponse> Coordinator::CreateRun(v1::RunSpec spec,
                                                          std::vector<UploadedFile> files) {
  absl::Status st = CheckSpec(spec);
  if (!st.ok()) return st;
  absl::MutexLock lock(&submit_mu_);
  v1::SubmitResponse resp;
  if (!spec.idempotency_key().empty()) {
    std::string existing = scheduler_->FindRunByKey(spec.idempotency_key());
    if (existing.empty() && !options_.recover_all_runs) {
      auto recovered = RecoverRunByKey(spec.idempotency_key());
      if (!recovered.ok()) return recovered.status();
      existing = *recovered;
    }
    if (!existing.empty()) {
      scheduler_->SetLimits(spec.model(), spec.limits());
      auto reopened = scheduler_->Reopen(existing);
      // A merge in progress (a recovered run whose outputs were cut short)
      // takes a moment; its failed questions are reopened after it.
      for (int i = 0; i < 600 && !reopened.ok() && absl::IsUnavailable(reopened.status()); ++i) {
        absl::SleepFor(absl::Milliseconds(50));
        reopened = scheduler_->Reopen(existing);
      }
      if (!reopened.ok()) return reopened.status();
      resp.set_run_id(existing);
      resp.set_resumed(true);
      resp.set_reopened(*reopened);
      MEDEVAL_LOG(INFO) << "run " << existing << " resumed"
                        << (*reopened > 0
                                ? absl::StrCat("; ", *reopened, " failed questions asked again")
                                : "");
      return resp;
    }
  }
  if (!spec.idempotency_key().empty()) {
    auto it = unloadable_.find(spec.idempotency_key());
    if (it != unloadable_.end()) {
      // Starting over would pay for every answer again: repair or refuse.
      auto resumed = RecoverWithUpload(it->second.first, it->second.second, files);
      if (!resumed.ok()) return resumed.status();
      unloadable_.erase(it);
      return resumed;
    }
  }
  if (files.empty()) return absl::InvalidArgumentError("the submission holds no files");
  spec.set_run_id(StateDir::NewRunId());
  spec.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  if (spec.params().timeout_s() == 0) spec.mutable_params()->set_timeout_s(kDefaultTimeoutS);
  if (spec.params().max_attempts() == 0)
    spec.mutable_params()->set_max_attempts(kDefaultMaxAttempts);

  std::shared_ptr<Suite> suite;
  auto final_spec = state_->CreateRun(
      spec.run_id(), files, [&](const std::string& input_dir) -> absl::StatusOr<v1::RunSpec> {
        v1::RunSpec s = spec;
        s.clear_datasets();  // taken from what was uploaded
        auto loaded = LoadRunSuite(input_dir, s);
        if (!loaded.ok()) return loaded.status();
        for (const Dataset& ds : loaded->datasets) {
          v1::DatasetSpec* d = s.add_datasets();
          d->set_name(ds.file.name);
          d->set_input_path(ds.file.input_path);
          d->set_output_name(ds.file.output_name);
          d->set_input_sha256(ds.sha256);
          d->set_lines(ds.line_count);
          for (const InputIssue& issue : ds.issues) {
            d->add_skipped_lines(issue.line);
            d->add_skipped_reasons(issue.message);
          }
        }
        suite = std::make_shared<Suite>(std::move(*loaded));
        return s;
      });
  if (!final_spec.ok()) return final_spec.status();
  // From here the run folder exists: a failure removes it, or it would come
  // back as a run at the next start while the client was told it failed.
  uint32_t reused = 0;
  st = AddCreatedRun(*final_spec, std::move(suite), &reused);
  if (!st.ok()) {
    MEDEVAL_LOG(ERROR) << "run " << final_spec->run_id() << " not created: " << st.message();
    absl::Status rm = RemoveAll(state_->RunDir(final_spec->run_id()));
    if (rm.ok()) rm = SyncDir(DirName(state_->RunDir(final_spec->run_id())));
    if (!rm.ok()) MEDEVAL_LOG(ERROR) << "cannot remove the failed run: " << rm.message();
    return st;
  }
  resp.set_run_id(final_spec->run_id());
  resp.set_answers_reused(reused);
  return resp;
}

absl::Status Coordinator::AddCreatedRun(const v1::RunSpec& final_spec, std::shared_ptr<Suite> suite,
                                        uint32_t* answers_reused) {
  absl::Status st;
  suite->root = state_->InputDir(final_spec.run_id());

  LoadedRun run;
  auto images = LoadRunImages(*state_, final_spec, *suite);
  if (!images.ok()) return images.status();
  run.images = std::move(*images);
  run.spec = final_spec;
  const size_t n = suite->question_count();
  run.suite = suite;
  run.state.assign(n, kPending);
  run.offset.assign(n, 0);
  run.output_dir = state_->OutputDir(run.spec.run_id());
  JournalReplay replay;
  auto journal = JournalFile::Open(
      state_->JournalPath(run.spec.run_id()), run.spec.run_id(), [](uint64_t, absl::string_view) {},
      &replay);
  if (!journal.ok()) return journal.status();
  run.journal = std::move(*journal);
  auto reused = SeedFromEarlierRun(
      *state_, *journal_, [this](const std::string& id) { return scheduler_->HasRun(id); }, &run);
  if (!reused.ok()) return reused.status();
  if (answers_reused != nullptr) *answers_reused = static_cast<uint32_t>(*reused);
  scheduler_->SetLimits(final_spec.model(), final_spec.limits());
  // The idempotency key is registered here, with the complete run.
  st = scheduler_->AddRun(std::move(run));
  if (!st.ok()) return st;
  MEDEVAL_LOG(INFO) << "run " << final_spec.run_id() << " created: model " << final_spec.model()
                    << ", " << n << " questions in " << final_spec.datasets_size() << " datasets ("
                    << final_spec.track() << ")";
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitResponse> Coordinator::RecoverWithUpload(
    const std::string& run_id, const absl::Status& load_error,
    const std::vector<UploadedFile>& files) {
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat(
        "an earlier run with the same settings (", state_->RunDir(run_id),
        ") cannot be loaded: ", load_error.message(), why,
        ". Nothing was asked; repair or remove that folder, then run the same command again"));
  };
  auto spec = state_->ReadSpec(run_id);
  if (!spec.ok()) return refuse("");
  std::vector<std::string> restored;
  absl::Status st = RestoreInputs(*state_, *spec, files, &restored);
  if (!st.ok()) return refuse(absl::StrCat("; ", st.message()));
  if (restored.empty()) return refuse("");
  auto run = LoadRun(*state_, *spec);
  if (!run.ok())
    return refuse(absl::StrCat("; after restoring its input: ", run.status().message()));
  scheduler_->SetLimits(spec->model(), spec->limits());
  st = scheduler_->AddRun(std::move(*run));
  if (!st.ok()) return st;
  MEDEVAL_LOG(WARNING) << "run " << run_id << ": restored the damaged stored copy of "
                       << absl::StrJoin(restored, ", ")
                       << " from the submitted input (same SHA-256 as at submission)";
  v1::SubmitResponse resp;
  resp.set_run_id(run_id);
  resp.set_resumed(true);
  return resp;
}

void Coordinator::Shutdown() {
  if (shut_down_.exchange(true)) return;
  {
    absl::MutexLock lock(&tick_mu_);
    stopping_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
  if (server_) {
    const CoordinatorService::OpenCalls open = service_->open_calls();
    MEDEVAL_LOG(INFO) << "shutting down: no new calls; waiting up to "
                      << absl::FormatDuration(kShutdownDeadline) << " for " << open.workers
                      << " worker streams, " << open.uploads << " uploads and " << open.fetches
                      << " fetches";
    const absl::Time start = absl::Now();
    server_->GetHealthCheckService()->SetServingStatus(false);
    // Calls still open at the deadline are cancelled; every reactor then
    // ends its call, so this returns.
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(kShutdownDeadline));
    const CoordinatorService::OpenCalls after = service_->open_calls();
    MEDEVAL_LOG(INFO) << "gRPC server stopped after "
                      << absl::FormatDuration(
                             absl::Trunc(absl::Now() - start, absl::Milliseconds(1)))
                      << "; " << after.cancelled - open.cancelled << " calls cancelled";
  }
  // Every accepted answer goes to disk (which may complete runs), then the
  // merges of completed runs finish.
  if (journal_) {
    journal_->Flush();
    // Flush waits for the writer to process each record; a failed write was
    // logged as an error when it happened and is not retried here.
    MEDEVAL_LOG(INFO) << "journal: every record appended before shutdown was written and synced, "
                         "or its write error was logged";
  }
  executor_.reset();
  MEDEVAL_LOG(INFO) << "background tasks finished; coordinator stopped";
}

Coordinator::~Coordinator() {
  Shutdown();
  // Order matters: scrapes and the server's reactors use the scheduler, and
  // journal callbacks still reach the scheduler until the writer stops.
  ops_.reset();
  server_.reset();
  service_.reset();
  journal_.reset();
  scheduler_.reset();
  state_.reset();
}

}  // namespace medeval
