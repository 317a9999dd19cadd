#include "coordinator/run_output.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/cost.h"
#include "common/file_ops.h"
#include "common/file_util.h"
#include "common/file_writer.h"
#include "common/http_headers.h"
#include "common/records.h"
#include "common/sha256.h"
#include "common/suite.h"
#include "common/utf8.h"
#include "common/version.h"
#include "common/zip_archive.h"

namespace medeval {
namespace {

using ojson = nlohmann::ordered_json;

ojson ParamsJson(const v1::RequestParams& p) {
  ojson j;
  j["system_prompt"] = p.has_system_prompt() ? ojson(p.system_prompt()) : ojson(nullptr);
  j["temperature"] = p.has_temperature() ? ojson(p.temperature()) : ojson(nullptr);
  j["max_tokens"] = p.has_max_tokens() ? ojson(p.max_tokens()) : ojson(nullptr);
  j["top_p"] = p.has_top_p() ? ojson(p.top_p()) : ojson(nullptr);
  j["extra_body"] = p.extra_body_json().empty() ? ojson(nullptr)
                                                : ojson::parse(p.extra_body_json(), nullptr, false);
  ojson headers = ojson::object();
  for (const auto& [k, v] : p.extra_headers()) {
    // Credentials are refused when a run is created; a run saved before
    // that rule still never shows one.
    headers[k] = IsCredentialHeader(k) ? "***" : v;
  }
  j["extra_headers"] = headers;
  j["timeout_s"] = p.timeout_s();
  j["max_attempts"] = p.max_attempts();
  return j;
}

// What a reader of the result must know: a proxy that swapped the model,
// answers cut off at max_tokens.
ojson RunWarnings(const v1::RunSpec& spec, const std::map<std::string, uint64_t>& served,
                  const std::set<std::string>& requested, uint64_t truncated) {
  ojson warnings = ojson::array();
  std::set<std::string> asked = requested;
  if (asked.empty()) asked.insert(spec.model());
  for (const auto& [name, n] : served) {
    if (asked.count(name)) continue;
    warnings.push_back(absl::StrCat(n, " answers were served by model '", name,
                                    "', not the requested '", absl::StrJoin(asked, "', '"), "'"));
  }
  if (truncated > 0) {
    warnings.push_back(absl::StrCat(truncated,
                                    " answers were cut off at max_tokens (finish_reason length); "
                                    "raise or unset max_tokens"));
  }
  return warnings;
}

// A line whose question is not answered: as it was when its answer is
// already empty, else with the answer emptied (a prefilled answer is never
// submitted as the model's).
void AppendWithEmptyAnswer(absl::string_view line, ojson* in, FileWriter* out) {
  auto it = in->find("answer");
  if (it == in->end() || (it->is_string() && it->get<std::string>().empty())) {
    out->Append(line);
    out->Append("\n");
    return;
  }
  (*in)["answer"] = "";
  out->Append(in->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  out->Append("\n");
}

}  // namespace

absl::Status WriteRunOutputs(const RunSnapshot& snap, const std::string& input_dir) {
  const v1::RunSpec& spec = snap.spec;
  auto track = ParseTrack(spec.track());
  if (!track.ok()) return track.status();
  const std::string folder(SubmissionFolder(*track));
  const std::string tmp = snap.output_dir + ".tmp";
  absl::Status st = RemoveAll(tmp);
  if (st.ok()) st = MakeDirs(JoinPath(tmp, folder));
  if (!st.ok()) return st;

  auto records = FileWriter::Create(JoinPath(tmp, "records.jsonl"));
  if (!records.ok()) return records.status();
  ojson inputs = ojson::array(), outputs = ojson::array(), failed_list = ojson::array(),
        skipped = ojson::array(), blocking = ojson::array();
  uint64_t blank_lines = 0;
  std::set<std::string> endpoints, workers;
  // What the servers said they served: name -> answers.
  std::map<std::string, uint64_t> served_models;
  std::set<std::string> requested_models;
  ojson truncated_by_dataset = ojson::object();
  uint64_t truncated = 0;
  uint64_t answered = 0, failed = 0, attempts = 0, prompt_tokens = 0, completion_tokens = 0;
  std::vector<ZipEntry> zip_entries;
  CostMeter cost(spec.price());
  uint32_t q = 0;  // global question index
  for (size_t d = 0; d < snap.suite->datasets.size(); ++d) {
    const Dataset& ds = snap.suite->datasets[d];
    const std::string in_path = JoinPath(input_dir, ds.file.input_path);
    auto contents = ReadFile(in_path);
    if (!contents.ok()) return contents.status();
    std::vector<absl::string_view> lines = SplitLines(*contents);
    // Answers stream to the files: memory holds one answer at a time.
    const std::string rel = JoinPath(folder, ds.file.output_name);
    const std::string out_path = JoinPath(tmp, rel);
    auto out = FileWriter::Create(out_path);
    if (!out.ok()) return out.status();
    size_t local = 0;  // next question of this dataset, by line order
    for (size_t i = 0; i < lines.size(); ++i) {
      const uint32_t lineno = static_cast<uint32_t>(i + 1);
      if (IsBlankLine(lines[i])) continue;  // not a question: not in the upload
      if (local >= ds.size() || ds.line(local) != lineno) {
        // A skipped (invalid) line keeps its place with an empty answer when
        // it is a JSON object; anything else cannot go into an upload file.
        ojson in = FindInvalidUtf8(lines[i]) == absl::string_view::npos
                       ? ojson::parse(lines[i].begin(), lines[i].end(), nullptr, false)
                       : ojson(ojson::value_t::discarded);
        if (!in.is_object()) {
          blocking.push_back({{"path", ds.file.input_path},
                              {"line", lineno},
                              {"reason", "not a JSON object in UTF-8: cannot be an answer line"}});
          continue;
        }
        AppendWithEmptyAnswer(lines[i], &in, out->get());
        continue;
      }
      const uint32_t gq = q + static_cast<uint32_t>(local);
      ++local;
      const bool is_failed = snap.state[gq] == kFailed;
      if (snap.state[gq] != kAnswered && !is_failed) {
        return absl::InternalError(absl::StrCat(ds.file.name, ":", lineno, ": not settled"));
      }
      auto payload = snap.journal->ReadAt(snap.offset[gq]);
      if (!payload.ok()) return payload.status();
      v1::JournalEntry entry;
      if (!entry.ParseFromString(*payload) || entry.index() != gq) {
        return absl::DataLossError(absl::StrCat(snap.journal->path(), ": record for ", ds.file.name,
                                                ":", lineno, " is damaged"));
      }
      v1::AnswerRecord& rec = is_failed ? *entry.mutable_failure() : *entry.mutable_answer();
      // Requests of other copies (backups, late duplicates) reached the
      // server too: the record counts every request sent for the question.
      if (auto more = snap.more_attempts.find(gq); more != snap.more_attempts.end()) {
        rec.set_attempts(rec.attempts() + static_cast<int32_t>(more->second));
      }
      ojson in = ojson::parse(lines[i].begin(), lines[i].end(), nullptr, false);
      if (is_failed) {
        // Never a made-up answer, nor one the input already held.
        AppendWithEmptyAnswer(lines[i], &in, out->get());
        ++failed;
        failed_list.push_back(
            {{"dataset", ds.file.name}, {"line", lineno}, {"error", rec.last_error()}});
      } else {
        if (IsTruncated(rec)) {
          ++truncated;
          truncated_by_dataset[ds.file.name] = truncated_by_dataset.value(ds.file.name, 0) + 1;
        }
        if (!rec.served_model().empty()) ++served_models[rec.served_model()];
        if (!rec.requested_model().empty()) requested_models.insert(rec.requested_model());
        in["answer"] = rec.answer();
        (*out)->Append(in.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        (*out)->Append("\n");
        ++answered;
      }
      attempts += static_cast<uint64_t>(rec.attempts());
      prompt_tokens += static_cast<uint64_t>(rec.prompt_tokens());
      completion_tokens += static_cast<uint64_t>(rec.completion_tokens());
      cost.Add(rec);
      if (!rec.endpoint().empty()) endpoints.insert(rec.endpoint());
      if (!rec.worker().empty()) workers.insert(rec.worker());
      ojson other = in.is_object() && in.contains("other") ? in["other"] : ojson(nullptr);
      (*records)->Append(RecordJson(ds.file.name, lineno, other, rec, is_failed,
                                    ds.images(static_cast<size_t>(gq - q)))
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      (*records)->Append("\n");
    }
    q += static_cast<uint32_t>(ds.size());
    st = (*out)->Commit();
    if (!st.ok()) return st;
    zip_entries.push_back({rel, out_path});
    inputs.push_back({{"dataset", ds.file.name},
                      {"path", ds.file.input_path},
                      {"sha256", ds.sha256},
                      {"lines", ds.line_count},
                      {"questions", ds.size()}});
    blank_lines += ds.blank_lines;
    outputs.push_back({{"path", rel}, {"sha256", (*out)->sha256()}});
    for (const InputIssue& issue : ds.issues) {
      skipped.push_back(
          {{"path", ds.file.input_path}, {"line", issue.line}, {"reason", issue.message}});
    }
  }

  // Every image and PDF the questions showed the model, so `verify` covers them.
  for (const auto& [path, sha] : snap.suite->image_sha256) {
    inputs.push_back({{"image", path}, {"path", path}, {"sha256", sha}});
  }
  const bool complete = failed == 0 && blocking.empty();
  // Lines that cannot be written as JSON lines stop the zip, whatever is allowed.
  const bool zip_written = blocking.empty() && (complete || spec.allow_incomplete_zip());
  if (zip_written) {
    const std::string zip = JoinPath(tmp, absl::StrCat(folder, ".zip"));
    st = WriteZip(zip, {folder}, zip_entries);
    if (!st.ok()) return st;
    auto sha = Sha256File(zip);
    if (!sha.ok()) return sha.status();
    outputs.push_back({{"path", absl::StrCat(folder, ".zip")}, {"sha256", *sha}});
  }
  st = (*records)->Commit();
  if (!st.ok()) return st;
  outputs.push_back({{"path", "records.jsonl"}, {"sha256", (*records)->sha256()}});

  const int64_t finished_ms = snap.finished == absl::InfinitePast()
                                  ? absl::ToUnixMillis(absl::Now())
                                  : absl::ToUnixMillis(snap.finished);
  ojson m;
  m["medeval_version"] = kVersion;
  m["run_id"] = spec.run_id();
  // What names the run: a later `medeval run` into this folder tells its own
  // run from another one by it.
  m["run_key"] = spec.idempotency_key();
  if (!spec.answers_key().empty()) m["answers_key"] = spec.answers_key();
  m["model"] = spec.model();
  m["track"] = spec.track();
  m["submission_folder"] = folder;
  m["endpoints"] = ojson(std::vector<std::string>(endpoints.begin(), endpoints.end()));
  m["workers"] = ojson(std::vector<std::string>(workers.begin(), workers.end()));
  ojson served = ojson::array();
  for (const auto& [name, n] : served_models) served.push_back(name);
  m["served_models"] = served;
  m["request"] = ParamsJson(spec.params());
  m["started"] = IsoTime(spec.created_unix_ms());
  m["finished"] = IsoTime(finished_ms);
  m["finished_unix_ms"] = finished_ms;
  m["complete"] = complete;
  m["zip_written"] = zip_written;
  m["counts"] = {{"questions", answered + failed},
                 {"answered", answered},
                 {"failed", failed},
                 {"skipped_invalid", skipped.size()},
                 {"blank_lines_left_out", blank_lines},
                 {"attempts", attempts},
                 {"duplicate_results", snap.duplicates},
                 {"truncated", truncated},
                 {"prompt_tokens", prompt_tokens},
                 {"completion_tokens", completion_tokens}};
  if (HasPrice(spec.price())) m["cost"] = cost.ToJson();
  m["inputs"] = inputs;
  m["outputs"] = outputs;
  m["skipped"] = skipped;
  m["failed"] = failed_list;
  m["truncated"] = truncated_by_dataset;
  m["warnings"] = RunWarnings(spec, served_models, requested_models, truncated);
  // Input lines that no upload file can hold (not JSON, not UTF-8): the zip is
  // not written until they are fixed or removed.
  m["blocking_lines"] = blocking;
  m["journal_bytes"] = snap.journal->durable_size();
  st = WriteFileAtomic(JoinPath(tmp, "manifest.json"), m.dump(2) + "\n");
  if (!st.ok()) return st;

  // Swap the new folder in.
  const std::string old = snap.output_dir + ".old";
  st = RemoveAll(old);
  if (!st.ok()) return st;
  if (PathExists(snap.output_dir) && Files().Rename(snap.output_dir.c_str(), old.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", snap.output_dir));
  }
  if (Files().Rename(tmp.c_str(), snap.output_dir.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", tmp));
  }
  st = SyncDir(DirName(snap.output_dir));
  if (!st.ok()) return st;
  return RemoveAll(old);
}

}  // namespace medeval
