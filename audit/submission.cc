#include "audit/submission.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/suite.h"
#include "common/zip_archive.h"

namespace medeval {
namespace {

constexpr Track kTracks[] = {Track::kV4Llm, Track::kV4Agent, Track::kV4Vlm, Track::kLegacyLlm};

std::optional<Track> TrackOfFolder(const std::string& folder) {
  for (Track t : kTracks) {
    if (SubmissionFolder(t) == folder) return t;
  }
  return std::nullopt;
}

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The manifest's "skipped" list names input files; "inputs" maps them to
// datasets.
void ReadSkipped(const nlohmann::json& m, Submission* s) {
  if (!m.contains("skipped") || !m["skipped"].is_array() || !m.contains("inputs") ||
      !m["inputs"].is_array()) {
    return;
  }
  std::map<std::string, std::string> dataset_of;
  for (const auto& in : m["inputs"]) {
    if (in.is_object() && in.contains("path") && in["path"].is_string() && in.contains("dataset") &&
        in["dataset"].is_string()) {
      dataset_of[in["path"].get<std::string>()] = in["dataset"].get<std::string>();
    }
  }
  for (const auto& sk : m["skipped"]) {
    if (!sk.is_object() || !sk.contains("path") || !sk["path"].is_string() ||
        !sk.contains("line") || !sk["line"].is_number_unsigned()) {
      continue;
    }
    auto ds = dataset_of.find(sk["path"].get<std::string>());
    if (ds == dataset_of.end()) continue;
    std::string reason = sk.contains("reason") && sk["reason"].is_string()
                             ? sk["reason"].get<std::string>()
                             : "invalid input line";
    s->skipped[{ds->second, sk["line"].get<uint32_t>()}] = std::move(reason);
  }
}

// manifest.json and records.jsonl of a run folder.
void ReadRunExtras(const std::string& dir, Submission* s) {
  auto manifest = ReadFile(JoinPath(dir, "manifest.json"));
  if (manifest.ok()) {
    auto m = nlohmann::json::parse(*manifest, nullptr, false);
    if (m.is_object()) {
      s->manifest = m;
      if (m.contains("model") && m["model"].is_string()) {
        s->label = m["model"];
        s->label_source = "manifest.json";
      }
      ReadSkipped(m, s);
    }
  }
  auto records = ReadFile(JoinPath(dir, "records.jsonl"));
  if (!records.ok()) return;
  for (absl::string_view line : SplitLines(*records)) {
    if (IsBlankLine(line)) continue;
    auto r = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (!r.is_object() || !r.contains("dataset") || !r.contains("line")) continue;
    if (!r["dataset"].is_string() || !r["line"].is_number_unsigned()) continue;
    // The key first: json's operator= takes its argument by value, and the
    // right side of = is evaluated first.
    std::pair<std::string, uint32_t> key(r["dataset"].get<std::string>(),
                                         r["line"].get<uint32_t>());
    s->records[std::move(key)] = std::move(r);
  }
}

absl::Status SetTrack(const std::string& folder, const Track* forced, Submission* s) {
  s->folder = folder;
  if (forced != nullptr) {
    s->track = *forced;
    return absl::OkStatus();
  }
  auto t = TrackOfFolder(folder);
  if (!t.has_value()) {
    // A folder named otherwise: v4 LLM unless the files are legacy ones.
    bool legacy = !s->files.empty();
    for (const auto& f : s->files) legacy = legacy && absl::EndsWith(f.name, "_test.jsonl");
    s->track = legacy ? Track::kLegacyLlm : Track::kV4Llm;
    return absl::OkStatus();
  }
  s->track = *t;
  return absl::OkStatus();
}

void FinishFiles(Submission* s) {
  for (auto& f : s->files) f.dataset = DatasetOfFile(f.name, s->track);
  std::sort(s->files.begin(), s->files.end(),
            [](const SubmissionFile& a, const SubmissionFile& b) { return a.dataset < b.dataset; });
}

absl::StatusOr<Submission> ReadZipSubmission(const std::string& path, const Track* forced) {
  auto members = ReadZip(path);
  if (!members.ok()) return members.status();
  Submission s;
  s.path = path;
  std::string folder;
  for (auto& m : *members) {
    if (m.is_dir || !absl::EndsWith(m.name, ".jsonl")) continue;
    size_t slash = m.name.find('/');
    std::string top = slash == std::string::npos ? "" : m.name.substr(0, slash);
    std::string name = slash == std::string::npos ? m.name : m.name.substr(slash + 1);
    if (name.find('/') != std::string::npos) continue;  // deeper than the platform's layout
    if (folder.empty()) folder = top;
    if (top != folder) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": holds files in both '", folder, "/' and '", top,
                       "/'; the platform expects one folder per upload"));
    }
    s.files.push_back({name, "", std::move(m.data)});
  }
  if (s.files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no .jsonl files in the zip"));
  }
  absl::Status st = SetTrack(folder, forced, &s);
  if (!st.ok()) return st;
  // A zip inside a medeval run folder: the manifest names the model.
  std::string dir = DirName(path);
  s.label = BaseName(path).substr(0, BaseName(path).size() - 4);
  s.label_source = "zip name";
  s.read_from = folder.empty() ? path : absl::StrCat(path, ":", folder, "/");
  if (PathExists(JoinPath(dir, "manifest.json"))) {
    s.label = BaseName(dir);
    s.label_source = "folder name";
    ReadRunExtras(dir, &s);
  }
  FinishFiles(&s);
  return s;
}

absl::StatusOr<Submission> ReadFolderSubmission(const std::string& folder_path,
                                                const std::string& path, const Track* forced) {
  auto names = ListDir(folder_path);
  if (!names.ok()) return names.status();
  Submission s;
  s.path = path;
  for (const auto& n : *names) {
    if (!absl::EndsWith(n, ".jsonl") || IsDirectory(JoinPath(folder_path, n))) continue;
    auto data = ReadFile(JoinPath(folder_path, n));
    if (!data.ok()) return data.status();
    s.files.push_back({n, "", std::move(*data)});
  }
  if (s.files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(folder_path, ": no .jsonl files"));
  }
  absl::Status st = SetTrack(BaseName(folder_path), forced, &s);
  if (!st.ok()) return st;
  s.label = BaseName(folder_path);
  s.label_source = "folder name";
  s.read_from = folder_path;
  if (!absl::EndsWith(s.read_from, "/")) s.read_from += "/";
  std::string parent = DirName(folder_path);
  if (TrackOfFolder(s.label).has_value()) s.label = BaseName(parent);
  if (PathExists(JoinPath(parent, "manifest.json"))) ReadRunExtras(parent, &s);
  FinishFiles(&s);
  return s;
}

}  // namespace

std::string DatasetOfFile(const std::string& name, Track track) {
  std::string base = absl::EndsWith(name, ".jsonl") ? name.substr(0, name.size() - 6) : name;
  if (track == Track::kLegacyLlm && absl::EndsWith(base, "_test")) base.resize(base.size() - 5);
  return base;
}

absl::StatusOr<Submission> ReadSubmission(const std::string& path, const Track* forced) {
  if (!PathExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  if (!IsDirectory(path)) {
    if (!absl::EndsWith(path, ".zip")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected a .zip, a submission folder or a run folder"));
    }
    return ReadZipSubmission(path, forced);
  }
  // A run folder holds one submission folder (and maybe its zip).
  std::vector<std::string> folders;
  for (Track t : kTracks) {
    std::string f(SubmissionFolder(t));
    if (IsDirectory(JoinPath(path, f))) folders.push_back(f);
  }
  if (folders.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds several submission folders (",
                                                   absl::StrJoin(folders, ", "),
                                                   "); give one of them"));
  }
  if (folders.size() == 1) return ReadFolderSubmission(JoinPath(path, folders[0]), path, forced);
  return ReadFolderSubmission(path, path, forced);
}

}  // namespace medeval
