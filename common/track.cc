#include "common/track.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/input_path.h"

namespace medeval {
namespace {

constexpr absl::string_view kLlmDatasets[] = {
    "CMB-Clin-extended", "DDx-advanced",   "MedAnalysis",    "MedCare",
    "MedChartQC",        "MedDiag",        "MedDiffer",      "MedEthics",
    "MedExam",           "MedExplain",     "MedHC",          "MedHG",
    "MedInsureCalc",     "MedInsureCheck", "MedLitQA",       "MedMC",
    "MedOutcome",        "MedPHM",         "MedPathQC",      "MedPopular",
    "MedPrimary",        "MedPsychCare",   "MedPsychQA",     "MedRecordGen",
    "MedRehab",          "MedReportQC",    "MedRxCheck_MSQ", "MedRxCheck_SCQ",
    "MedRxCheck_SQ",     "MedRxPlan",      "MedSafety",      "MedSpeQA",
    "MedSummary",        "MedSynonym",     "MedTeach",       "MedTerm",
    "MedTreat",          "SMDoc"};
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

bool IsKnownV4LlmDataset(absl::string_view name) { return Contains(kLlmDatasets, name); }
bool IsKnownV4AgentDataset(absl::string_view name) { return Contains(kAgentDatasets, name); }
bool IsKnownV4VlmDataset(absl::string_view name) { return Contains(kVlmDatasets, name); }

namespace {

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// The v4 track that publishes `name`, or nullopt.
std::optional<Track> PublishedTrack(absl::string_view name) {
  if (IsKnownV4LlmDataset(name)) return Track::kV4Llm;
  if (IsKnownV4AgentDataset(name)) return Track::kV4Agent;
  if (IsKnownV4VlmDataset(name)) return Track::kV4Vlm;
  return std::nullopt;
}

template <size_t N>
std::string JoinList(const absl::string_view (&list)[N]) {
  return absl::StrJoin(std::begin(list), std::end(list), ", ");
}

std::string KnownNames() {
  return absl::StrCat("v4-llm: ", JoinList(kLlmDatasets), "; v4-agent: ", JoinList(kAgentDatasets),
                      "; v4-vlm: ", JoinList(kVlmDatasets));
}

// Looks like a dataset file by its name, ignoring case.
bool LooksLikeJsonl(absl::string_view name) { return absl::EndsWithIgnoreCase(name, ".jsonl"); }

constexpr absl::string_view kExampleSubmission = "example_submission.jsonl";

}  // namespace

absl::StatusOr<SuiteLayout> DetectSuite(const std::string& root, const Track* forced,
                                        const std::vector<std::string>& only_in,
                                        bool known_names_only) {
  if (!IsDirectory(root)) {
    return absl::NotFoundError(absl::StrCat(root,
                                            ": not a directory (--data names the folder "
                                            "holding the dataset files)"));
  }
  auto names = ListDir(root);
  if (!names.ok()) return names.status();
  const std::string root_real = ResolvedPath(root);

  SuiteLayout layout;
  layout.root = root;
  std::vector<DatasetFile> v4, legacy;
  std::vector<std::string> problems;
  // --data at one legacy dataset folder (<Dataset>/<Dataset>_test.jsonl): the
  // suite is that one dataset, laid out as in a legacy suite.
  const std::string base = BaseName(root_real.empty() ? root : root_real);
  const std::string own_file = absl::StrCat(base, "_test.jsonl");
  const bool single_legacy = !base.empty() && base != "/" &&
                             std::find(names->begin(), names->end(), own_file) != names->end();
  for (const std::string& n : *names) {
    const std::string path = JoinPath(root, n);
    if (n[0] == '.') {
      if (LooksLikeJsonl(n)) {
        layout.notes.push_back(absl::StrCat("ignoring ", path, ": a hidden file",
                                            absl::StartsWith(n, "._")
                                                ? " (a macOS resource fork), not a dataset"
                                                : ", not a dataset"));
      }
      continue;
    }
    if (n == kExampleSubmission) {
      layout.notes.push_back(
          absl::StrCat("ignoring ", path, ": the platform's example submission, not a dataset"));
      continue;
    }
    if (single_legacy) {
      if (n == own_file) {
        std::string why = InputFileProblem(path, root_real, path);
        if (!why.empty()) {
          problems.push_back(why);
        } else {
          legacy.push_back({base, JoinPath(base, own_file), own_file});
        }
      } else if (LooksLikeJsonl(n)) {
        layout.notes.push_back(absl::StrCat("ignoring ", path, ": not ", own_file,
                                            " (the dataset of this legacy folder)"));
      }
      continue;
    }
    if (absl::EndsWith(n, ".jsonl") && !IsDirectory(path)) {
      std::string why = InputFileProblem(path, root_real, path);
      if (!why.empty()) {
        problems.push_back(why);
        continue;
      }
      v4.push_back({n.substr(0, n.size() - 6), n, n});
    } else if (LooksLikeJsonl(n) && !IsDirectory(path)) {
      layout.notes.push_back(absl::StrCat("ignoring ", path,
                                          ": dataset files end in .jsonl (lower case); rename it "
                                          "to read it"));
    } else if (IsDirectory(path)) {
      const std::string file = absl::StrCat(n, "_test.jsonl");
      const std::string fpath = JoinPath(path, file);
      struct stat st;
      if (::lstat(fpath.c_str(), &st) != 0) continue;
      std::string why = InputFileProblem(fpath, root_real, fpath);
      if (!why.empty()) {
        problems.push_back(why);
        continue;
      }
      legacy.push_back({n, absl::StrCat(n, "/", file), file});
    }
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  if (single_legacy) layout.root = DirName(root_real);
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
  const bool is_legacy = !legacy.empty();
  layout.files = is_legacy ? std::move(legacy) : std::move(v4);

  // --datasets first: the track is that of the datasets asked for.
  std::vector<std::string> only;
  for (const std::string& o : only_in) {
    std::string t(absl::StripAsciiWhitespace(o));
    if (!t.empty()) only.push_back(std::move(t));
  }
  if (!only.empty()) {
    std::set<std::string> wanted(only.begin(), only.end());
    std::vector<DatasetFile> kept;
    std::vector<std::string> have;
    for (auto& f : layout.files) {
      have.push_back(f.name);
      if (wanted.erase(f.name) > 0) kept.push_back(std::move(f));
    }
    if (!wanted.empty()) {
      std::sort(have.begin(), have.end());
      return absl::InvalidArgumentError(
          absl::StrCat("--datasets names ", absl::StrJoin(wanted, ", "), " not found in ", root,
                       " (available: ", absl::StrJoin(have, ", "), ")"));
    }
    layout.files = std::move(kept);
  }
  std::sort(layout.files.begin(), layout.files.end(),
            [](const DatasetFile& a, const DatasetFile& b) { return a.name < b.name; });

  if (is_legacy) {
    layout.track = Track::kLegacyLlm;
    if (forced != nullptr && *forced != Track::kLegacyLlm) {
      return absl::InvalidArgumentError(
          absl::StrCat(root, ": is a legacy suite (<Dataset>/<Dataset>_test.jsonl) but --track is ",
                       TrackName(*forced)));
    }
    return layout;
  }
  if (forced != nullptr) {
    if (*forced == Track::kLegacyLlm) {
      return absl::InvalidArgumentError(
          absl::StrCat(root, ": holds v4 files (<Dataset>.jsonl) but --track is legacy-llm"));
    }
    std::vector<std::string> foreign;
    for (const auto& f : layout.files) {
      std::optional<Track> t = PublishedTrack(f.name);
      if (t.has_value() && *t != *forced) {
        foreign.push_back(absl::StrCat(f.name, " (", TrackName(*t), ")"));
      }
    }
    if (!foreign.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--track ", TrackName(*forced), " does not fit ", root, ": ", foreign.size(),
          " datasets belong to another track: ", absl::StrJoin(foreign, ", "),
          ". Leave out --track to detect the track, or pick the datasets with --datasets"));
    }
    layout.track = *forced;
    return layout;
  }
  std::set<Track> tracks;
  std::vector<std::string> unknown;
  std::map<Track, std::vector<std::string>> by_track;
  for (const auto& f : layout.files) {
    std::optional<Track> t = PublishedTrack(f.name);
    if (t.has_value()) {
      tracks.insert(*t);
      by_track[*t].push_back(f.name);
    } else {
      unknown.push_back(f.name);
    }
  }
  if (!unknown.empty() && known_names_only) {
    return absl::InvalidArgumentError(absl::StrCat(
        root, ": ", unknown.size() == 1 ? "dataset " : "datasets ", absl::StrJoin(unknown, ", "),
        unknown.size() == 1 ? " is" : " are",
        " not published by MedBench, so the track cannot be told (known datasets: ", KnownNames(),
        "). Pass --track v4-llm, v4-agent or v4-vlm to run ", unknown.size() == 1 ? "it" : "them",
        " as that track"));
  }
  if (tracks.size() > 1) {
    std::vector<std::string> parts;
    for (const auto& [t, list] : by_track) {
      parts.push_back(absl::StrCat(TrackName(t), ": ", absl::StrJoin(list, ", ")));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(root, ": mixes datasets of different v4 tracks (", absl::StrJoin(parts, "; "),
                     "); pick one track's datasets with --datasets, or pass --track"));
  }
  layout.track = tracks.empty() ? Track::kV4Llm : *tracks.begin();
  return layout;
}

}  // namespace medeval
