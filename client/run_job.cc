#include "client/run_job.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/batch_view.h"
#include "client/embedded_cluster.h"
#include "client/progress.h"
#include "client/run_folder.h"
#include "common/cost.h"
#include "common/file_util.h"
#include "common/pdf_render.h"
#include "common/records.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "worker/endpoint_health.h"
#include "worker/endpoint_probe.h"

namespace medeval {
namespace {

constexpr size_t kMaxFailuresShown = 20;

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream sos(&out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&cos);
  cos.Trim();
  return out;
}

bool Finished(const v1::RunStatus& r) {
  return r.state() == "done" || r.state() == "incomplete" || r.state() == "merge-failed" ||
         r.state() == "stopped";
}

// What the fetched manifest says a reader must know: answers cut off at
// max_tokens (kept as answered, listed per dataset) and served model names
// other than the requested one.
void PrintRunWarnings(const std::string& folder, const std::string& model, std::ostream& err) {
  auto text = ReadFile(JoinPath(folder, "manifest.json"));
  if (!text.ok()) return;
  auto m = nlohmann::json::parse(*text, nullptr, false);
  if (!m.is_object()) return;
  auto truncated = m.find("truncated");
  if (truncated != m.end() && truncated->is_object() && !truncated->empty()) {
    uint64_t total = 0;
    std::vector<std::string> parts;
    for (const auto& [dataset, n] : truncated->items()) {
      if (!n.is_number_unsigned()) continue;
      total += n.get<uint64_t>();
      parts.push_back(absl::StrCat(dataset, " ", n.get<uint64_t>()));
    }
    err << "medeval: " << model << ": " << total
        << " answers were cut off at max_tokens (finish_reason length) and are kept as the "
           "model gave them: "
        << absl::StrJoin(parts, ", ")
        << ". Raise or unset --max-tokens (max_tokens in the models file) for whole answers.\n";
  }
  auto warnings = m.find("warnings");
  if (warnings != m.end() && warnings->is_array()) {
    for (const auto& w : *warnings) {
      if (w.is_string() && absl::StrContains(w.get<std::string>(), "served by model")) {
        err << "medeval: " << model << ": warning: " << w.get<std::string>()
            << " (a proxy or server that swaps models; see served_model in records.jsonl)\n";
      }
    }
  }
}

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

// The cost line of a fetched run whose manifest has one.
void PrintCost(const std::string& folder, std::ostream& out) {
  auto text = ReadFile(JoinPath(folder, "manifest.json"));
  if (!text.ok()) return;
  auto m = nlohmann::json::parse(*text, nullptr, false);
  if (!m.is_object() || !m.contains("cost") || !m["cost"].is_object()) return;
  out << "  cost " << CostText(CostFromJson(m["cost"])) << "\n";
}

}  // namespace

v1::RequestParams DefaultRequestParams() {
  v1::RequestParams p;
  p.set_system_prompt("You are a helpful assistant.");
  p.set_has_system_prompt(true);
  p.set_temperature(0);
  p.set_timeout_s(600);
  p.set_max_attempts(6);
  return p;
}

absl::StatusOr<Suite> LoadSuiteForRun(const SuiteSelection& sel, std::ostream& err,
                                      int* exit_code) {
  LoadOptions opts;
  opts.forced_track = sel.track.has_value() ? &*sel.track : nullptr;
  opts.only_datasets = sel.datasets;
  // A question is sent only as the track it belongs to.
  opts.known_names_only = true;
  auto suite = LoadSuite(sel.data_dir, opts);
  if (!suite.ok()) {
    *exit_code = suite.status().code() == absl::StatusCode::kInternal ? kJobFailed : kJobBadInput;
    return suite.status();
  }
  for (const std::string& note : suite->notes) err << "medeval: note: " << note << "\n";
  std::vector<InputIssue> issues = suite->issues();
  for (const InputIssue& issue : issues) err << issue.ToString() << "\n";
  if (!issues.empty()) {
    size_t files = 0;
    for (const Dataset& ds : suite->datasets) files += ds.issues.empty() ? 0 : 1;
    if (!sel.skip_invalid) {
      *exit_code = kJobBadInput;
      return absl::InvalidArgumentError(
          absl::StrCat(issues.size(), " invalid input lines in ", files,
                       " files; nothing was asked. Fix them, or pass --skip-invalid to leave "
                       "them out (they are listed in the manifest)."));
    }
    err << "medeval: leaving out " << issues.size() << " invalid lines (--skip-invalid)\n";
  }
  if (suite->question_count() == 0) {
    *exit_code = kJobBadInput;
    return absl::InvalidArgumentError(absl::StrCat(sel.data_dir, ": no questions to ask"));
  }
  *exit_code = kJobOk;
  return suite;
}

v1::RunSpec MakeRunSpec(const Suite& suite, const std::string& model,
                        const v1::RequestParams& params, const v1::ModelLimits& limits,
                        const SuiteSelection& selection, bool allow_incomplete_zip) {
  const bool skip_invalid = selection.skip_invalid;
  v1::RunSpec spec;
  spec.set_model(model);
  *spec.mutable_limits() = limits;  // not in the key: budgets do not change answers
  spec.set_track(std::string(TrackName(suite.track)));
  *spec.mutable_params() = params;
  spec.set_skip_invalid(skip_invalid);
  spec.set_allow_incomplete_zip(allow_incomplete_zip);
  // Everything that reaches the model but the images (and the zip rule).
  std::string common = absl::StrCat("model\n", model, "\ntrack\n", spec.track(), "\n");
  for (const Dataset& ds : suite.datasets) {
    absl::StrAppend(&common, ds.file.name, " ", ds.sha256, "\n");
  }
  absl::StrAppend(&common, "skip_invalid ", skip_invalid, " allow_incomplete ",
                  allow_incomplete_zip, "\n");
  if (suite.track == Track::kV4Vlm) {
    // Other pages or resolution are other inputs to the model.
    const PdfRenderOptions defaults;
    spec.mutable_pdf()->set_max_pages(selection.pdf.max_pages() > 0 ? selection.pdf.max_pages()
                                                                    : defaults.max_pages);
    spec.mutable_pdf()->set_dpi(selection.pdf.dpi() > 0 ? selection.pdf.dpi() : defaults.dpi);
    absl::StrAppend(&common, "pdf ", spec.pdf().max_pages(), " ", spec.pdf().dpi(), "\n");
  }
  // Timeout and attempts do not change answers: resuming with other values is fine.
  v1::RequestParams answer_params = params;
  answer_params.clear_timeout_s();
  answer_params.clear_max_attempts();
  absl::StrAppend(&common, DeterministicBytes(answer_params));
  Sha256Hasher h;
  // Kept in this order so runs without images keep the keys they had.
  const std::string marker = absl::StrCat("skip_invalid ", skip_invalid);
  const size_t split = common.find(marker);
  h.Update(absl::string_view(common).substr(0, split));
  // The images are what the model is shown too: another image is another
  // run, which takes over the answers of the questions whose images did not
  // change (answers_key).
  std::string images;
  for (const auto& [path, sha] : suite.image_sha256) {
    absl::StrAppend(&images, "image ", path.size(), " ", path, " ", sha, "\n");
  }
  h.Update(images);
  h.Update(absl::string_view(common).substr(split));
  if (suite.track == Track::kV4Vlm) spec.set_answers_key(Sha256Hex(common));
  spec.set_idempotency_key(h.HexDigest());
  return spec;
}

std::string NoWorkerNotice(const std::string& model, const v1::StatusResponse& status) {
  for (const auto& w : status.workers()) {
    if (w.model() == model && w.connected()) return "";
  }
  return absl::StrCat("no worker for model ", model,
                      " has connected; start one with `medeval worker --model ", model,
                      " --coordinator HOST:PORT --base-url URL` (or --serve CMD)");
}

int WaitAndFetch(CoordinatorClient& client, const std::vector<std::string>& run_ids,
                 const WaitOptions& options, const std::atomic<bool>& interrupted,
                 std::ostream& out, std::ostream& err) {
  ProgressReporter progress(err, options.tty);
  std::map<std::string, v1::RunStatus> last;
  std::map<std::string, std::string> aborted;  // run id -> why
  std::set<std::string> told_no_worker;        // models
  std::map<std::string, absl::Time> workerless_since;
  int status_errors = 0;
  while (true) {
    if (interrupted.load()) break;
    auto st = client.Status("");
    if (!st.ok()) {
      // A coordinator restarting is not the end of the run.
      if (++status_errors % 20 == 1) {
        progress.Print(absl::StrCat("medeval: ", st.status().message(), "\n"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    status_errors = 0;
    std::vector<v1::RunStatus> mine;
    for (const auto& r : st->runs()) {
      if (std::find(run_ids.begin(), run_ids.end(), r.run_id()) == run_ids.end()) continue;
      last[r.run_id()] = r;
      mine.push_back(r);
      if (!Finished(r) && options.model_error && !aborted.count(r.run_id())) {
        absl::Status why = options.model_error(r.model());
        if (!why.ok()) aborted[r.run_id()] = std::string(why.message());
      }
      if (!Finished(r) && r.endpoint_state().down() && !aborted.count(r.run_id()) &&
          absl::Now() - absl::FromUnixMillis(r.endpoint_state().since_unix_ms()) >
              options.endpoint_down_timeout) {
        aborted[r.run_id()] = absl::StrCat(
            EndpointDownText(r.endpoint_state()), "; gave up after waiting ",
            absl::FormatDuration(options.endpoint_down_timeout), " (--endpoint-down-timeout)");
      }
      if (Finished(r)) continue;
      const std::string notice = NoWorkerNotice(r.model(), *st);
      if (notice.empty()) {
        workerless_since.erase(r.model());
      } else {
        auto [it, fresh] = workerless_since.emplace(r.model(), absl::Now());
        if (absl::Now() - it->second >= options.no_worker_notice &&
            told_no_worker.insert(r.model()).second) {
          progress.Print(absl::StrCat("medeval: ", notice, "\n"));
        }
      }
    }
    progress.Update(mine,
                    std::vector<v1::WorkerStatus>(st->workers().begin(), st->workers().end()));
    bool all_over = mine.size() == run_ids.size();
    for (const auto& r : mine) all_over = all_over && (Finished(r) || aborted.count(r.run_id()));
    if (all_over) {
      // The counts as they are now: answers delivered while the workers
      // stopped count as saved.
      if (!aborted.empty()) {
        if (auto again = client.Status(""); again.ok()) {
          for (const auto& r : again->runs()) {
            if (last.count(r.run_id())) last[r.run_id()] = r;
          }
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  progress.Done();

  int code = kJobOk;
  for (const std::string& id : run_ids) {
    auto it = last.find(id);
    if (it == last.end()) {
      err << "medeval: run " << id << " is unknown to the coordinator\n";
      code = kJobFailed;
      continue;
    }
    const v1::RunStatus& r = it->second;
    const std::string folder = JoinPath(options.out_dir, ModelFolderName(r.model()));
    if (auto ab = aborted.find(id); ab != aborted.end()) {
      err << "medeval: " << r.model() << ": stopped: " << ab->second << "\n"
          << "  " << r.answered() << " answers are saved; fix the problem and run the same "
          << "command again to continue.\n";
      code = kJobFailed;
      continue;
    }
    if (!Finished(r) && options.remote) {
      err << "medeval: " << r.model() << ": run " << id << " at " << r.answered() + r.failed()
          << "/" << r.total() << " goes on at the coordinator (medeval status " << id
          << "; medeval fetch " << id << " --out DIR when it is done)\n";
      code = code == kJobOk ? kJobInterrupted : code;
      continue;
    }
    if (!Finished(r)) {
      err << "medeval: " << r.model() << ": interrupted at " << r.answered() + r.failed() << "/"
          << r.total() << "; the answers so far are saved. Run the same command again to "
          << "continue.\n";
      code = code == kJobOk ? kJobInterrupted : code;
      continue;
    }
    if (r.state() == "stopped") {
      err << "medeval: " << r.model() << ": stopped: " << r.error() << "\n";
      code = kJobFailed;
      continue;
    }
    if (r.state() == "merge-failed") {
      err << "medeval: " << r.model() << ": writing the outputs failed: " << r.error() << "\n";
      code = kJobFailed;
      continue;
    }
    auto files = client.Fetch(id, folder);
    if (!files.ok()) {
      err << "medeval: " << r.model() << ": " << files.status().message() << "\n";
      code = kJobFailed;
      continue;
    }
    const double secs =
        r.finished_unix_ms() > r.created_unix_ms()
            ? static_cast<double>(r.finished_unix_ms() - r.created_unix_ms()) / 1000.0
            : 0;
    out << r.model() << ": " << r.answered() << "/" << r.total() << " answered";
    if (secs > 0) {
      out << " in " << ShortDuration(secs);
    }
    out << ", " << r.retries() << " retries, " << r.failed() << " failed\n";
    PrintCost(folder, out);
    std::string zip;
    for (const auto& f : *files) {
      if (f.find('/') == std::string::npos && f.size() > 4 && f.substr(f.size() - 4) == ".zip") {
        zip = f;
      }
    }
    if (!zip.empty()) out << "  " << JoinPath(folder, zip) << "   (upload this to MedBench)\n";
    if (zip.empty() && r.failed() == 0) {
      // No failure, no zip: input lines no upload file can hold.
      auto m = nlohmann::json::parse(ReadFile(JoinPath(folder, "manifest.json")).value_or("{}"),
                                     nullptr, false);
      if (m.is_object() && m.contains("blocking_lines") && m["blocking_lines"].is_array() &&
          !m["blocking_lines"].empty()) {
        code = kJobFailed;
        err << "medeval: " << r.model() << ": no upload zip was written: these input lines are "
            << "not JSON objects in UTF-8, so no answer file can hold them. Fix or remove them "
            << "and run the same command again:\n";
        size_t shown = 0;
        for (const auto& b : m["blocking_lines"]) {
          if (++shown > kMaxFailuresShown) {
            err << "  ... (all of them in " << JoinPath(folder, "manifest.json") << ")\n";
            break;
          }
          err << "  " << JoinPath(options.data_dir, b.value("path", "?")) << ":"
              << b.value("line", 0) << "\n";
        }
      }
    }
    out << "  " << JoinPath(folder, "records.jsonl") << "   (every answer, reasoning, tokens)\n";
    out << "  " << JoinPath(folder, "manifest.json") << "   (settings, SHA-256 of every file)\n";
    PrintRunWarnings(folder, r.model(), err);
    if (r.failed() > 0) {
      code = kJobFailed;
      err << "medeval: " << r.model() << ": " << r.failed() << " questions failed; their answers "
          << "are not written" << (zip.empty() ? " and no upload zip was made" : "")
          << ". Run the same command again to retry only them:\n";
      for (int i = 0; i < r.failed_questions_size() && i < static_cast<int>(kMaxFailuresShown);
           ++i) {
        err << "  " << r.failed_questions(i) << "\n";
      }
      if (r.failed() > kMaxFailuresShown) {
        err << "  ... (all of them in " << JoinPath(folder, "manifest.json") << ")\n";
      }
    }
  }
  if (interrupted.load() && code == kJobOk) code = kJobInterrupted;
  return code;
}

namespace {

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
