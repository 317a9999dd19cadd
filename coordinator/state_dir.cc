#include "coordinator/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_ops.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/records.h"
#include "common/sha256.h"

namespace medeval {

absl::StatusOr<std::unique_ptr<StateDir>> StateDir::Open(const std::string& dir) {
  absl::Status st = MakeDirs(JoinPath(dir, "runs"));
  if (!st.ok()) return st;
  std::string lock_path = JoinPath(dir, "LOCK");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[64] = {0};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) holder = absl::StrCat(" (pid ", absl::StripAsciiWhitespace(buf), ")");
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("state directory ", dir, " is in use by another medeval coordinator", holder,
                       "; stop it or use another directory"));
    }
    return ErrnoStatus(err, lock_path);
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    MEDEVAL_LOG(WARNING) << lock_path << ": cannot record our pid";
  }
  return std::unique_ptr<StateDir>(new StateDir(dir, fd));
}

StateDir::~StateDir() { ::close(lock_fd_); }

std::string StateDir::RunDir(const std::string& id) const {
  return JoinPath(JoinPath(root_, "runs"), id);
}
std::string StateDir::InputDir(const std::string& id) const {
  return JoinPath(RunDir(id), "input");
}
std::string StateDir::OutputDir(const std::string& id) const {
  return JoinPath(RunDir(id), "output");
}
std::string StateDir::JournalPath(const std::string& id) const {
  return JoinPath(RunDir(id), "journal");
}

std::string StateDir::PdfCacheDir() const { return JoinPath(root_, "cache/pdf"); }

absl::StatusOr<std::shared_ptr<const RunImages>> LoadRunImages(const StateDir& dir,
                                                               const v1::RunSpec& spec,
                                                               const Suite& suite) {
  if (suite.track != Track::kV4Vlm) return std::shared_ptr<const RunImages>();
  PdfRenderOptions pdf;
  if (spec.pdf().max_pages() > 0) pdf.max_pages = spec.pdf().max_pages();
  if (spec.pdf().dpi() > 0) pdf.dpi = spec.pdf().dpi();
  auto images = RunImages::Load(suite, dir.InputDir(spec.run_id()), dir.PdfCacheDir(), pdf);
  if (!images.ok()) {
    return absl::Status(images.status().code(),
                        absl::StrCat("run ", spec.run_id(), ": ", images.status().message()));
  }
  if ((*images)->pdf_pages_rendered() > 0) {
    MEDEVAL_LOG(INFO) << "run " << spec.run_id() << ": rendered " << (*images)->pdf_pages_rendered()
                      << " PDF pages";
  }
  return images;
}

std::string StateDir::NewRunId() {
  absl::BitGen gen;
  return absl::StrCat(absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone()), "-",
                      absl::StrFormat("%04x", absl::Uniform<uint32_t>(gen, 0, 0x10000)));
}

absl::StatusOr<v1::RunSpec> StateDir::CreateRun(
    const std::string& run_id, const std::vector<UploadedFile>& files,
    const std::function<absl::StatusOr<v1::RunSpec>(const std::string& input_dir)>& finalize) {
  const std::string final_dir = RunDir(run_id);
  if (PathExists(final_dir)) {
    return absl::AlreadyExistsError(absl::StrCat("run folder ", final_dir, " exists"));
  }
  const std::string tmp = JoinPath(JoinPath(root_, "runs"), absl::StrCat(".tmp-", run_id));
  absl::Status st = RemoveAll(tmp);
  if (st.ok()) st = MakeDirs(JoinPath(tmp, "input"));
  if (!st.ok()) return st;
  auto fail = [&](absl::Status err) {
    RemoveAll(tmp).IgnoreError();
    return err;
  };
  for (const UploadedFile& f : files) {
    if (!IsSafeRelativePath(f.path)) {
      return fail(absl::InvalidArgumentError(absl::StrCat("unsafe file path '", f.path, "'")));
    }
    std::string path = JoinPath(JoinPath(tmp, "input"), f.path);
    st = MakeDirs(DirName(path));
    if (st.ok()) st = WriteFileAtomic(path, f.data, /*durable=*/false);
    if (!st.ok()) return fail(st);
  }
  auto spec = finalize(JoinPath(tmp, "input"));
  if (!spec.ok()) return fail(spec.status());
  spec->set_journal_format(kJournalFormat);
  // The journal exists (with its header) before the run does: a published
  // run without one has lost it.
  auto journal = JournalFile::Create(JoinPath(tmp, "journal"), run_id);
  if (!journal.ok()) return fail(journal.status());
  journal->reset();
  st = WriteFileAtomic(JoinPath(tmp, "spec.pb"), spec->SerializeAsString(), /*durable=*/false);
  if (st.ok()) st = SyncFilesystem(tmp);
  if (!st.ok()) return fail(st);
  // The folder is complete on disk before it gets its final name.
  if (Files().Rename(tmp.c_str(), final_dir.c_str()) != 0) {
    return fail(ErrnoStatus(errno, absl::StrCat("rename to ", final_dir)));
  }
  st = SyncDir(JoinPath(root_, "runs"));
  if (!st.ok()) return st;
  return spec;
}

absl::StatusOr<std::vector<std::string>> StateDir::ListRuns() const {
  auto names = ListDir(JoinPath(root_, "runs"));
  if (!names.ok()) return names.status();
  std::vector<std::string> ids;
  for (auto& n : *names) {
    if (n.empty() || n[0] == '.') {
      // An interrupted submission.
      RemoveAll(JoinPath(JoinPath(root_, "runs"), n)).IgnoreError();
      continue;
    }
    ids.push_back(std::move(n));
  }
  return ids;
}

absl::StatusOr<v1::RunSpec> StateDir::ReadSpec(const std::string& id) const {
  std::string path = JoinPath(RunDir(id), "spec.pb");
  auto data = ReadFile(path);
  if (!data.ok()) return data.status();
  v1::RunSpec spec;
  if (!spec.ParseFromString(*data)) return absl::DataLossError(absl::StrCat(path, ": damaged"));
  return spec;
}

absl::StatusOr<Suite> LoadRunSuite(const std::string& input_dir, const v1::RunSpec& spec) {
  auto track = ParseTrack(spec.track());
  if (!track.ok()) return track.status();
  LoadOptions opts;
  opts.forced_track = &*track;
  for (const auto& d : spec.datasets()) opts.only_datasets.push_back(d.name());
  auto suite = LoadSuite(input_dir, opts);
  if (!suite.ok()) return suite.status();
  std::vector<InputIssue> issues = suite->issues();
  if (!issues.empty() && !spec.skip_invalid()) {
    std::vector<std::string> lines;
    for (size_t i = 0; i < issues.size() && i < 20; ++i) lines.push_back(issues[i].ToString());
    return absl::InvalidArgumentError(
        absl::StrCat(issues.size(),
                     " invalid input lines (submit with skip_invalid to leave them "
                     "out):\n",
                     absl::StrJoin(lines, "\n")));
  }
  if (suite->question_count() == 0) {
    return absl::InvalidArgumentError("the suite holds no valid questions");
  }
  return suite;
}

namespace {

// journal_bytes of the run's last written outputs (0 when none).
uint64_t ManifestJournalBytes(const std::string& output_dir) {
  auto manifest = ReadFile(JoinPath(output_dir, "manifest.json"));
  if (!manifest.ok()) return 0;
  auto m = nlohmann::json::parse(*manifest, nullptr, false);
  if (!m.is_object() || !m.contains("journal_bytes") || !m["journal_bytes"].is_number_unsigned()) {
    return 0;
  }
  return m["journal_bytes"].get<uint64_t>();
}

// Opens (and replays) the run's journal. A missing or emptied journal of a
// run that had one is reported, never replaced by an empty one: that would
// silently ask (and pay for) every answer again.
absl::StatusOr<std::shared_ptr<JournalFile>> OpenRunJournal(const StateDir& dir,
                                                            const v1::RunSpec& spec,
                                                            const JournalFile::Visit& visit,
                                                            JournalReplay* replay) {
  const std::string& id = spec.run_id();
  const std::string path = dir.JournalPath(id);
  const uint64_t written = ManifestJournalBytes(dir.OutputDir(id));
  const std::string remedy =
      absl::StrCat("; restore it from a backup, or remove ", dir.RunDir(id),
                   " to start this run over (every question is asked again)");
  struct stat sb;
  const bool exists = ::stat(path.c_str(), &sb) == 0;
  if (!exists || sb.st_size == 0) {
    if (spec.journal_format() >= kJournalFormat || written > 0) {
      return absl::DataLossError(absl::StrCat(path, exists ? " is empty" : " is missing",
                                              ": the answers this run had are lost", remedy));
    }
    // A run of an earlier version that never journaled anything.
    if (exists) Files().Unlink(path.c_str());
    *replay = JournalReplay();
    return JournalFile::Create(path, id);
  }
  auto journal = JournalFile::Open(path, id, visit, replay);
  if (!journal.ok()) {
    return absl::Status(journal.status().code(), absl::StrCat(journal.status().message(), remedy));
  }
  if (!replay->converted && written > (*journal)->durable_size()) {
    return absl::DataLossError(
        absl::StrCat(path, " holds ", (*journal)->durable_size(), " bytes, but ", written,
                     " when the outputs were last written: answers are lost", remedy));
  }
  return journal;
}

}  // namespace

absl::Status RestoreInputs(const StateDir& dir, const v1::RunSpec& spec,
                           const std::vector<UploadedFile>& files,
                           std::vector<std::string>* restored) {
  for (const v1::DatasetSpec& d : spec.datasets()) {
    if (!IsSafeRelativePath(d.input_path())) {
      return absl::FailedPreconditionError(
          absl::StrCat("unsafe input path '", d.input_path(), "' in the run's spec"));
    }
    const std::string stored = JoinPath(dir.InputDir(spec.run_id()), d.input_path());
    auto have = Sha256File(stored);
    if (have.ok() && *have == d.input_sha256()) continue;
    const UploadedFile* mine = nullptr;
    for (const UploadedFile& f : files) {
      if (f.path == d.input_path()) mine = &f;
    }
    if (mine == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "its stored copy of ", d.input_path(), " is damaged and the input holds no such file"));
    }
    const std::string sha = Sha256Hex(mine->data);
    if (sha != d.input_sha256()) {
      return absl::FailedPreconditionError(
          absl::StrCat("its stored copy of ", d.input_path(), " is damaged and your ",
                       d.input_path(), " differs from the one submitted then (SHA-256 ", sha,
                       ", recorded ", d.input_sha256(), ")"));
    }
    absl::Status st = MakeDirs(DirName(stored));
    if (st.ok()) st = WriteFileAtomic(stored, mine->data, /*durable=*/true);
    if (!st.ok()) return st;
    restored->push_back(d.input_path());
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedRun> LoadRun(const StateDir& dir, const v1::RunSpec& spec) {
  const std::string& id = spec.run_id();
  const absl::Time start = absl::Now();
  auto suite = LoadRunSuite(dir.InputDir(id), spec);
  const absl::Time suite_loaded = absl::Now();
  if (!suite.ok()) {
    return absl::Status(suite.status().code(),
                        absl::StrCat("run ", id, ": ", suite.status().message()));
  }
  for (int i = 0; i < spec.datasets_size() && i < static_cast<int>(suite->datasets.size()); ++i) {
    if (spec.datasets(i).input_sha256() != suite->datasets[i].sha256) {
      return absl::DataLossError(absl::StrCat("run ", id, ": input ", spec.datasets(i).input_path(),
                                              " changed since submission"));
    }
  }
  LoadedRun run;
  run.spec = spec;
  const size_t n = suite->question_count();
  run.state.assign(n, kPending);
  run.offset.assign(n, 0);
  run.output_dir = dir.OutputDir(id);
  absl::Status replay_error;
  JournalReplay replay;
  auto visit = [&](uint64_t offset, absl::string_view payload) {
    v1::JournalEntry e;
    if (!e.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      replay_error = absl::DataLossError(
          absl::StrCat(dir.JournalPath(id), ": unreadable record at offset ", offset));
      return;
    }
    if (e.has_reopen()) {
      for (size_t q = 0; q < n; ++q) {
        if (run.state[q] == kFailed) run.state[q] = kPending;
      }
      run.failure_errors.clear();
      return;
    }
    if (e.index() >= n) return;
    if (e.entry_case() == v1::JournalEntry::kMoreAttempts) {
      run.more_attempts[e.index()] += e.more_attempts();
      return;
    }
    const v1::AnswerRecord& rec = e.has_answer() ? e.answer() : e.failure();
    run.state[e.index()] = e.has_answer() ? kAnswered : kFailed;
    run.offset[e.index()] = offset;
    if (rec.attempts() > 1) run.retries += static_cast<uint64_t>(rec.attempts() - 1);
    if (e.has_failure()) run.failure_errors[e.index()] = rec.last_error();
    if (e.has_answer() && IsTruncated(rec)) ++run.truncated;
    run.tokens.Add(rec);
  };
  auto journal = OpenRunJournal(dir, spec, visit, &replay);
  if (!journal.ok()) {
    return absl::Status(journal.status().code(),
                        absl::StrCat("run ", id, ": ", journal.status().message()));
  }
  if (!replay_error.ok()) return replay_error;
  run.journal = std::move(*journal);
  MEDEVAL_LOG(INFO)
      << "recovered run " << id << ": " << n << " questions, journal of "
      << run.journal->durable_size() << " bytes ("
      << absl::FormatDuration(absl::Trunc(suite_loaded - start, absl::Milliseconds(1)))
      << " to load the questions, "
      << absl::FormatDuration(absl::Trunc(absl::Now() - suite_loaded, absl::Milliseconds(1)))
      << " to replay)";
  run.suite = std::make_shared<const Suite>(std::move(*suite));

  // Outputs written after the journal's last record are current.
  auto manifest = ReadFile(JoinPath(run.output_dir, "manifest.json"));
  if (manifest.ok()) {
    auto m = nlohmann::json::parse(*manifest, nullptr, false);
    if (m.is_object() && m.contains("journal_bytes") && m["journal_bytes"].is_number_unsigned() &&
        m["journal_bytes"].get<uint64_t>() == run.journal->durable_size()) {
      run.outputs_ready = true;
      if (m.contains("finished_unix_ms") && m["finished_unix_ms"].is_number_integer()) {
        run.finished = absl::FromUnixMillis(m["finished_unix_ms"].get<int64_t>());
      }
    }
  }
  return run;
}

}  // namespace medeval
