#include "common/track.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"

namespace medeval {
namespace {

constexpr absl::string_view kAgentDatasets[] = {
    "MedCOT",     "MedCallAPI",  "MedCollab",    "MedDBOps",  "MedDecomp",
    "MedDefend",  "MedIntentID", "MedLongConv",  "MedLongQA", "MedPathPlan",
    "MedReflect", "MedRetAPI",   "MedRoleAdapt", "MedShield"};
constexpr absl::string_view kVlmDatasets[] = {"MedCourse", "MedDetect",  "MedDiffDx",
                                              "MedGen",    "MedOCR",     "MedQC",
                                              "MedSeqIm",  "MedTherapy", "MedVQA"};

template <size_t N>
bool Contains(const absl::string_view (&list)[N], absl::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

std::string ListSubfolders(const std::string& root) {
  auto names = ListDir(root);
  std::vector<std::string> dirs;
  if (names.ok()) {
    for (const auto& n : *names) {
      if (IsDirectory(JoinPath(root, n))) dirs.push_back(n);
    }
  }
  return absl::StrJoin(dirs, ", ");
}

}  // namespace

absl::string_view TrackName(Track track) {
  switch (track) {
    case Track::kV4Llm:
      return "v4-llm";
    case Track::kV4Agent:
      return "v4-agent";
    case Track::kV4Vlm:
      return "v4-vlm";
    case Track::kLegacyLlm:
      return "legacy-llm";
  }
  return "unknown";
}

absl::StatusOr<Track> ParseTrack(absl::string_view name) {
  for (Track t : {Track::kV4Llm, Track::kV4Agent, Track::kV4Vlm, Track::kLegacyLlm}) {
    if (name == TrackName(t)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown track '", name, "' (expected v4-llm, v4-agent, v4-vlm or legacy-llm)"));
}

absl::string_view SubmissionFolder(Track track) {
  switch (track) {
    case Track::kV4Llm:
      return "MedBench_LLM";
    case Track::kV4Agent:
      return "MedBench_Agent";
    case Track::kV4Vlm:
      return "MedBench_VLM_QA";
    case Track::kLegacyLlm:
      return "MedBench";
  }
  return "MedBench";
}

bool IsKnownV4AgentDataset(absl::string_view name) { return Contains(kAgentDatasets, name); }
bool IsKnownV4VlmDataset(absl::string_view name) { return Contains(kVlmDatasets, name); }

absl::StatusOr<SuiteLayout> DetectSuite(const std::string& root, const Track* forced,
                                        const std::vector<std::string>& only) {
  if (!IsDirectory(root)) {
    return absl::NotFoundError(absl::StrCat(root,
                                            ": not a directory (--data names the folder "
                                            "holding the dataset files)"));
  }
  auto names = ListDir(root);
  if (!names.ok()) return names.status();

  std::vector<DatasetFile> v4, legacy;
  for (const std::string& n : *names) {
    std::string path = JoinPath(root, n);
    if (absl::EndsWith(n, ".jsonl") && !IsDirectory(path)) {
      std::string ds = n.substr(0, n.size() - 6);
      v4.push_back({ds, n, n});
    } else if (IsDirectory(path)) {
      std::string file = absl::StrCat(n, "_test.jsonl");
      if (PathExists(JoinPath(path, file))) {
        legacy.push_back({n, absl::StrCat(n, "/", file), file});
      }
    }
  }
  if (v4.empty() && legacy.empty()) {
    std::string sub = ListSubfolders(root);
    return absl::NotFoundError(
        absl::StrCat(root,
                     ": no dataset files (expected <Dataset>.jsonl for v4 or "
                     "<Dataset>/<Dataset>_test.jsonl for legacy)",
                     sub.empty() ? "" : absl::StrCat("; subfolders here: ", sub)));
  }
  if (!v4.empty() && !legacy.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(root,
                     ": holds both v4 files (<Dataset>.jsonl) and legacy folders "
                     "(<Dataset>/<Dataset>_test.jsonl); point --data at one suite"));
  }

  SuiteLayout layout;
  if (!legacy.empty()) {
    layout.track = Track::kLegacyLlm;
    layout.files = std::move(legacy);
    if (forced != nullptr && *forced != Track::kLegacyLlm) {
      return absl::InvalidArgumentError(
          absl::StrCat(root, ": is a legacy suite (<Dataset>/<Dataset>_test.jsonl) but --track is ",
                       TrackName(*forced)));
    }
  } else {
    layout.files = std::move(v4);
    if (forced != nullptr) {
      if (*forced == Track::kLegacyLlm) {
        return absl::InvalidArgumentError(
            absl::StrCat(root, ": holds v4 files (<Dataset>.jsonl) but --track is legacy-llm"));
      }
      layout.track = *forced;
    } else {
      size_t agent = 0, vlm = 0;
      for (const auto& f : layout.files) {
        if (IsKnownV4AgentDataset(f.name)) ++agent;
        if (IsKnownV4VlmDataset(f.name)) ++vlm;
      }
      if (agent > 0 && agent == layout.files.size()) {
        layout.track = Track::kV4Agent;
      } else if (vlm > 0 && vlm == layout.files.size()) {
        layout.track = Track::kV4Vlm;
      } else if (agent > 0 || vlm > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(root,
                         ": mixes datasets of different v4 tracks; pass --track "
                         "v4-llm|v4-agent|v4-vlm"));
      } else {
        layout.track = Track::kV4Llm;
      }
    }
  }

  if (!only.empty()) {
    std::set<std::string> wanted(only.begin(), only.end());
    std::vector<DatasetFile> kept;
    for (auto& f : layout.files) {
      if (wanted.erase(f.name) > 0) kept.push_back(std::move(f));
    }
    if (!wanted.empty()) {
      std::vector<std::string> have;
      for (const auto& f : layout.files) have.push_back(f.name);
      for (const auto& f : kept) have.push_back(f.name);
      std::sort(have.begin(), have.end());
      return absl::InvalidArgumentError(
          absl::StrCat("--datasets names ", absl::StrJoin(wanted, ", "), " not found in ", root,
                       " (available: ", absl::StrJoin(have, ", "), ")"));
    }
    layout.files = std::move(kept);
  }
  std::sort(layout.files.begin(), layout.files.end(),
            [](const DatasetFile& a, const DatasetFile& b) { return a.name < b.name; });
  return layout;
}

}  // namespace medeval
