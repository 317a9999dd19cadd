#include "client/coordinator_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/version.h"

namespace medeval {
namespace {

constexpr size_t kUploadChunk = 1 << 20;

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

std::vector<std::string> SuiteFiles(const Suite& suite) {
  std::vector<std::string> files;
  std::set<std::string> seen;
  for (const Dataset& ds : suite.datasets) {
    if (seen.insert(ds.file.input_path).second) files.push_back(ds.file.input_path);
  }
  for (const Dataset& ds : suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) {
      for (absl::string_view img : ds.images(i)) {
        std::string p(img);
        if (seen.insert(p).second) files.push_back(p);
      }
    }
    for (const InputIssue& issue : ds.issues) {
      for (const std::string& p : issue.files) {
        if (seen.insert(p).second) files.push_back(p);
      }
    }
  }
  return files;
}

absl::StatusOr<std::unique_ptr<CoordinatorClient>> CoordinatorClient::Connect(
    const std::string& target, const ClientSecurity& security) {
  if (target.empty()) return absl::InvalidArgumentError("--coordinator HOST:PORT is required");
  auto channel = MakeChannel(target, security);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<CoordinatorClient>(
      new CoordinatorClient(target, security, v1::Coordinator::NewStub(*channel)));
}

absl::Status CoordinatorClient::Explain(const grpc::Status& status, const char* what) const {
  std::string msg = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // Waiting mends a coordinator that is not up yet, not a TLS mismatch.
    if (std::string tls = TlsSetupProblem(msg, security_); !tls.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": cannot talk to the coordinator at ", target_, ": ", tls));
    }
    msg = absl::StrCat("cannot reach the coordinator at ", target_, " (", msg, ")");
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    msg = absl::StrCat("the coordinator at ", target_, " did not answer in time");
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", msg));
}

absl::StatusOr<v1::SubmitResponse> CoordinatorClient::Submit(const v1::RunSpec& spec,
                                                             const Suite& suite) {
  grpc::ClientContext ctx;
  AddAuth(&ctx, security_);
  ctx.set_deadline(Deadline(absl::Minutes(30)));
  v1::SubmitResponse resp;
  auto writer = stub_->Submit(&ctx, &resp);
  // The manifest first (so the coordinator checks sizes before taking any
  // data, and creates the run only from every file whole); each file is
  // read once, and must not change between the manifest and its upload.
  const std::vector<std::string> rels = SuiteFiles(suite);
  std::vector<std::string> digests;
  v1::SubmitChunk first;
  *first.mutable_spec() = spec;
  first.mutable_spec()->set_client_version(kVersion);
  for (const std::string& rel : rels) {
    const std::string path = JoinPath(suite.root, rel);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, path);
    auto sha = Sha256File(path);
    if (!sha.ok()) return sha.status();
    v1::ManifestEntry* e = first.mutable_manifest()->add_files();
    e->set_path(rel);
    e->set_size(static_cast<uint64_t>(st.st_size));
    e->set_sha256(*sha);
    digests.push_back(*sha);
  }
  bool ok = writer->Write(first);
  for (size_t i = 0; i < rels.size(); ++i) {
    if (!ok) break;
    const std::string& rel = rels[i];
    auto data = ReadFile(JoinPath(suite.root, rel));
    if (data.ok() &&
        (data->size() != first.manifest().files(i).size() || Sha256Hex(*data) != digests[i])) {
      data = absl::FailedPreconditionError(
          absl::StrCat(JoinPath(suite.root, rel), " changed while it was being submitted"));
    }
    if (!data.ok()) {
      // Cancelled: the coordinator creates nothing from a partial upload.
      ctx.TryCancel();
      writer->Finish().IgnoreError();
      return data.status();
    }
    v1::SubmitChunk head;
    head.mutable_file()->set_path(rel);
    head.mutable_file()->set_size(data->size());
    size_t off = 0;
    do {
      size_t n = std::min(kUploadChunk, data->size() - off);
      head.set_data(data->substr(off, n));
      ok = writer->Write(head);
      head.clear_file();
      off += n;
    } while (ok && off < data->size());
  }
  if (ok) writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return Explain(st, "submit");
  return resp;
}

absl::StatusOr<v1::StatusResponse> CoordinatorClient::Status(const std::string& run_id,
                                                             absl::Duration timeout) {
  grpc::ClientContext ctx;
  AddAuth(&ctx, security_);
  ctx.set_deadline(Deadline(timeout));
  v1::StatusRequest req;
  req.set_run_id(run_id);
  v1::StatusResponse resp;
  grpc::Status st = stub_->Status(&ctx, req, &resp);
  if (!st.ok()) return Explain(st, "status");
  return resp;
}

absl::Status CoordinatorClient::WaitUntilAnswering(
    absl::Duration max_wait,
    const std::function<void(const absl::Status&, absl::Duration)>& on_retry) {
  const absl::Time give_up = absl::Now() + max_wait;
  absl::Duration backoff = absl::Milliseconds(500);
  for (;;) {
    const absl::Duration left = give_up - absl::Now();
    // A reachable coordinator answers a status request in well under 5 s.
    absl::StatusOr<v1::StatusResponse> st =
        Status("", std::max(absl::Seconds(1), std::min(absl::Seconds(5), left)));
    if (st.ok()) return absl::OkStatus();
    if (!absl::IsUnavailable(st.status()) && !absl::IsDeadlineExceeded(st.status())) {
      return st.status();
    }
    const absl::Duration wait =
        absl::Trunc(std::min(backoff, give_up - absl::Now()), absl::Milliseconds(1));
    if (wait <= absl::ZeroDuration()) {
      return absl::UnavailableError(absl::StrCat("the coordinator did not answer within ",
                                                 absl::FormatDuration(max_wait), " (",
                                                 st.status().message(), ")"));
    }
    if (on_retry) on_retry(st.status(), wait);
    absl::SleepFor(wait);
    backoff = std::min(backoff * 2, absl::Seconds(8));
  }
}

absl::StatusOr<std::vector<std::string>> CoordinatorClient::Fetch(const std::string& run_id,
                                                                  const std::string& dir) {
  const std::string staging = dir + ".fetching";
  absl::Status fs = RemoveAll(staging);
  if (fs.ok()) fs = MakeDirs(staging);
  if (!fs.ok()) return fs;
  grpc::ClientContext ctx;
  AddAuth(&ctx, security_);
  ctx.set_deadline(Deadline(absl::Hours(1)));
  v1::FetchRequest req;
  req.set_run_id(run_id);
  auto reader = stub_->Fetch(&ctx, req);
  v1::FileChunk chunk;
  std::vector<std::string> files;
  int fd = -1;
  std::string current;
  uint64_t written = 0;
  absl::Status local;
  while (local.ok() && reader->Read(&chunk)) {
    if (chunk.path() != current) {
      if (fd >= 0) {
        local = absl::DataLossError(absl::StrCat(current, ": transfer cut short"));
        break;
      }
      if (!IsSafeRelativePath(chunk.path())) {
        local = absl::DataLossError(absl::StrCat("unsafe path from coordinator: ", chunk.path()));
        break;
      }
      current = chunk.path();
      std::string path = JoinPath(staging, current);
      local = MakeDirs(DirName(path));
      if (!local.ok()) break;
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) {
        local = ErrnoStatus(errno, path);
        break;
      }
      written = 0;
    }
    if (chunk.offset() != written) {
      local = absl::DataLossError(absl::StrCat(current, ": chunk out of order"));
      break;
    }
    const std::string& data = chunk.data();
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        local = ErrnoStatus(errno, JoinPath(staging, current));
        break;
      }
      done += static_cast<size_t>(n);
    }
    written += data.size();
    if (local.ok() && chunk.last()) {
      if (written != chunk.size()) {
        local = absl::DataLossError(
            absl::StrCat(current, ": got ", written, " of ", chunk.size(), " bytes"));
      }
      if (::fsync(fd) != 0 && local.ok()) local = ErrnoStatus(errno, current);
      ::close(fd);
      fd = -1;
      files.push_back(current);
      current.clear();
    }
  }
  if (fd >= 0) ::close(fd);
  if (!local.ok()) {
    ctx.TryCancel();
    reader->Finish().IgnoreError();
    RemoveAll(staging).IgnoreError();
    return local;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) {
    RemoveAll(staging).IgnoreError();
    return Explain(st, "fetch");
  }
  // Replace what an earlier fetch left: each top-level entry we got, and the
  // zip of a submission folder that no longer comes with one.
  fs = MakeDirs(dir);
  if (!fs.ok()) return fs;
  auto top = ListDir(staging);
  if (!top.ok()) return top.status();
  std::set<std::string> names(top->begin(), top->end());
  for (const std::string& name : *top) {
    if (IsDirectory(JoinPath(staging, name)) && !names.count(name + ".zip")) {
      RemoveAll(JoinPath(dir, name + ".zip")).IgnoreError();
    }
  }
  for (const std::string& name : *top) {
    std::string target = JoinPath(dir, name);
    fs = RemoveAll(target);
    if (fs.ok() && ::rename(JoinPath(staging, name).c_str(), target.c_str()) != 0) {
      fs = ErrnoStatus(errno, absl::StrCat("rename into ", target));
    }
    if (!fs.ok()) return fs;
  }
  SyncDir(dir).IgnoreError();
  RemoveAll(staging).IgnoreError();
  return files;
}

}  // namespace medeval
