#include "local/run_job.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/batch_view.h"
#include "client/run_folder.h"
#include "common/file_util.h"
#include "common/utf8.h"
#include "local/embedded_cluster.h"
#include "worker/endpoint_probe.h"

namespace medeval {
namespace {

bool SuiteHasPdfs(const Suite& suite) {
  for (const Dataset& ds : suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) {
      for (absl::string_view p : ds.images(i)) {
        if (absl::EndsWithIgnoreCase(p, ".pdf")) return true;
      }
    }
  }
  return false;
}

// Interrupted: the runs' unfinished batches are cancelled or left running,
// as the user answers.
void AskAboutBatches(CoordinatorClient& client, const std::vector<std::string>& run_ids,
                     BatchExitPrompt* prompt, EmbeddedCluster* cluster) {
  auto st = client.Status("");
  if (!st.ok()) return;  // nothing to show: the batches keep running
  std::string list;
  int open = 0;
  const absl::Time now = absl::Now();
  for (const v1::RunStatus& r : st->runs()) {
    if (std::find(run_ids.begin(), run_ids.end(), r.run_id()) == run_ids.end()) continue;
    for (const v1::BatchState& b : r.batches()) {
      if (BatchFinished(b)) continue;
      ++open;
      absl::StrAppend(&list, "\n  ", EscapeControl(r.model()), ": ", BatchText(b, now));
    }
  }
  if (open == 0) return;
  const std::string question =
      absl::StrCat("medeval: ", open, open == 1 ? " batch is" : " batches are",
                   " still running at the provider (billed for the lines it runs):", list);
  if (prompt->CancelBatches(question)) cluster->SetBatchCancelOnExit(true);
}

}  // namespace

int RunEmbeddedJob(const RunJobOptions& options, const std::atomic<bool>& interrupted,
                   std::ostream& out, std::ostream& err) {
  int code = kJobOk;
  auto suite = LoadSuiteForRun(options.suite, err, &code);
  if (!suite.ok()) {
    err << "medeval: " << suite.status().message() << "\n";
    return code;
  }
  // Everything about the output is checked before the first question.
  std::vector<v1::RunSpec> specs;
  const std::string state_dir = JoinPath(options.out_dir, ".medeval");
  for (const ModelRun& m : options.models) {
    specs.push_back(MakeRunSpec(*suite, m.model, m.params, m.limits, options.suite,
                                options.allow_incomplete_zip));
    // Not part of the run's identity (set after its key is made).
    *specs.back().mutable_price() = m.price;
    absl::Status st =
        CheckResultFolder(*suite, specs.back(), options.out_dir, options.replace, err);
    if (!st.ok()) {
      err << "medeval: " << st.message() << "\n";
      return kJobBadInput;
    }
  }
  if (options.probe) {
    for (const ModelRun& m : options.models) {
      if (m.serve.has_value()) continue;  // a local server is checked when it starts
      const std::string& asked = m.backend.served_model.empty() ? m.model : m.backend.served_model;
      auto check = CheckModelsEndpoint(m.backend, m.params, asked, absl::Seconds(15));
      if (!check.ok()) {
        err << "medeval: " << m.model << ": " << check.status().message() << "\n";
        // A wrong URL is bad input; an unreachable server or a refused key is not.
        return check.status().code() == absl::StatusCode::kInvalidArgument ? kJobBadInput
                                                                           : kJobFailed;
      }
      for (const std::string& w : check->warnings) {
        err << "medeval: warning: " << m.model << ": " << w << "\n";
      }
    }
  }
  EmbeddedCluster::Options eo;
  eo.state_dir = state_dir;
  // Only the runs this command names are continued: other runs kept in the
  // same folder stay as they are.
  eo.recover_all_runs = false;
  eo.scheduler = options.scheduler;
  eo.metrics_listen = options.metrics_listen;
  for (const ModelRun& m : options.models) {
    EmbeddedCluster::WorkerGroup g;
    g.model = m.model;
    g.backend = m.backend;
    g.serve = m.serve;
    g.count = m.workers;
    g.concurrency = m.concurrency;
    g.max_concurrency = m.max_concurrency;
    g.adaptive_concurrency = m.adaptive_concurrency;
    if (m.batch.enabled) {
      // One worker holds every question of the model (as many as a batch
      // takes), keeps its batch ids with the run, and gets no backup copies:
      // a question in a batch must not be asked elsewhere too.
      g.batch = m.batch;
      g.batch.state_dir = JoinPath(eo.state_dir, "batches");
      g.count = 1;
      g.concurrency = static_cast<int>(std::min<int64_t>(m.batch.max_lines, 1 << 20));
      eo.scheduler.backups = false;
    }
    eo.groups.push_back(std::move(g));
  }
  auto cluster = EmbeddedCluster::Start(std::move(eo));
  if (!cluster.ok()) {
    err << "medeval: " << cluster.status().message() << "\n";
    return kJobFailed;
  }
  if (!options.metrics_listen.empty()) {
    const std::string& l = options.metrics_listen;
    err << "medeval: metrics on http://" << l.substr(0, l.rfind(':')) << ":"
        << (*cluster)->coordinator().metrics_port() << "/metrics\n";
  }
  auto client = CoordinatorClient::Connect((*cluster)->target(), (*cluster)->client_security());
  if (!client.ok()) {
    err << "medeval: " << client.status().message() << "\n";
    return kJobFailed;
  }
  if (SuiteHasPdfs(*suite)) {
    err << "medeval: preparing images (PDF reports are rendered once, then cached in "
        << options.out_dir << "/.medeval)\n";
  }
  std::vector<std::string> run_ids;
  for (size_t i = 0; i < options.models.size(); ++i) {
    const ModelRun& m = options.models[i];
    auto resp = (*client)->Submit(specs[i], *suite);
    if (!resp.ok()) {
      err << "medeval: " << m.model << ": " << resp.status().message() << "\n";
      (*cluster)->Stop(absl::ZeroDuration());
      // An earlier run that cannot be continued as it is: the user decides.
      return resp.status().code() == absl::StatusCode::kFailedPrecondition ? kJobBadInput
                                                                           : kJobFailed;
    }
    if (resp->resumed()) {
      uint64_t answered = 0, total = suite->question_count();
      if (auto st = (*client)->Status(resp->run_id()); st.ok() && st->runs_size() > 0) {
        answered = st->runs(0).answered();
        total = st->runs(0).total();
      }
      err << "medeval: " << m.model << ": continuing run " << resp->run_id() << ": "
          << GroupedNumber(answered) << "/" << GroupedNumber(total) << " answered"
          << (resp->reopened() > 0
                  ? absl::StrCat(" (", resp->reopened(), " failed questions asked again)")
                  : "")
          << "\n";
    } else {
      err << "medeval: " << m.model << ": new run " << resp->run_id() << ": "
          << GroupedNumber(suite->question_count()) << " questions";
      if (resp->answers_reused() > 0) {
        err << ", " << GroupedNumber(resp->answers_reused())
            << " answered already by an earlier run with the same question and images";
      }
      err << "\n";
    }
    run_ids.push_back(resp->run_id());
  }
  WaitOptions wo;
  wo.out_dir = options.out_dir;
  wo.data_dir = options.suite.data_dir;
  wo.tty = options.tty;
  EmbeddedCluster* c = cluster->get();
  wo.model_error = [c](const std::string& model) { return c->ModelError(model); };
  wo.endpoint_down_timeout = options.endpoint_down_timeout;
  code = WaitAndFetch(**client, run_ids, wo, interrupted, out, err);
  if (interrupted.load() && options.batch_exit_prompt != nullptr) {
    AskAboutBatches(**client, run_ids, options.batch_exit_prompt, cluster->get());
  }
  (*cluster)->Stop(interrupted.load() ? options.drain_grace : absl::ZeroDuration());
  return code;
}

}  // namespace medeval
