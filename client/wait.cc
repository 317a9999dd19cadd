#include "client/wait.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/progress.h"
#include "client/run_folder.h"
#include "client/run_spec.h"
#include "common/cost.h"
#include "common/endpoint_state.h"
#include "common/file_util.h"
#include "common/records.h"

namespace medeval {
namespace {

constexpr size_t kMaxFailuresShown = 20;

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

// The cost line of a fetched run whose manifest has one.
void PrintCost(const std::string& folder, std::ostream& out) {
  auto text = ReadFile(JoinPath(folder, "manifest.json"));
  if (!text.ok()) return;
  auto m = nlohmann::json::parse(*text, nullptr, false);
  if (!m.is_object() || !m.contains("cost") || !m["cost"].is_object()) return;
  out << "  cost " << CostText(CostFromJson(m["cost"])) << "\n";
}

}  // namespace

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

}  // namespace medeval
