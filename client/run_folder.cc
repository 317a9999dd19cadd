#include "client/run_folder.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/records.h"
#include "common/track.h"

namespace medeval {
namespace {

// Fetch stages a run's files in "<folder>.fetching" beside the folder.
constexpr absl::string_view kStagingSuffix = ".fetching";

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

uint64_t JsonCount(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains("counts") || !j["counts"].is_object()) return 0;
  const nlohmann::json& c = j["counts"];
  if (!c.contains(key) || !c[key].is_number_unsigned()) return 0;
  return c[key].get<uint64_t>();
}

}  // namespace

std::string GroupedNumber(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

absl::Status CheckOutputFolder(const std::string& folder) {
  const std::string parent = DirName(folder);
  long name_max = ::pathconf(IsDirectory(parent) ? parent.c_str() : ".", _PC_NAME_MAX);
  if (name_max <= 0) name_max = NAME_MAX;
  const std::string base = BaseName(folder);
  if (base.size() + kStagingSuffix.size() > static_cast<size_t>(name_max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("output folder name too long for the file system (", base.size(),
                     " bytes; at most ", name_max - static_cast<long>(kStagingSuffix.size()),
                     "): ", folder, "; use a shorter model name or --out"));
  }
  if (PathExists(folder) && !IsDirectory(folder)) {
    return absl::InvalidArgumentError(
        absl::StrCat(folder,
                     " is not a folder; results go to OUT/<model>/: move it or choose "
                     "another --out"));
  }
  absl::Status st = MakeDirs(folder);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create the output folder ", folder, ": ", st.message()));
  }
  // Writable by this process (permissions, a read-only mount): found now,
  // not after every question was asked.
  const std::string probe = JoinPath(folder, absl::StrCat(".medeval-write-check-", ::getpid()));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write in the output folder ", folder, ": ", std::strerror(err)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

std::string DescribeOtherResult(const std::string& folder, const v1::RunSpec& spec,
                                const std::string& state_dir) {
  auto text = ReadFile(JoinPath(folder, "manifest.json"));
  if (!text.ok()) return "";
  auto m = nlohmann::json::parse(*text, nullptr, false);
  std::string key = JsonString(m, "run_key");
  const std::string run_id = JsonString(m, "run_id");
  if (key.empty() && !run_id.empty() && run_id.find('/') == std::string::npos) {
    // Written before manifests named the key: the stored spec has it.
    auto stored = ReadFile(JoinPath(JoinPath(JoinPath(state_dir, "runs"), run_id), "spec.pb"));
    v1::RunSpec old;
    if (stored.ok() && old.ParseFromString(*stored)) key = old.idempotency_key();
  }
  if (!key.empty() && key == spec.idempotency_key()) return "";
  // The same questions and settings with images added or changed: this run
  // takes over that run's answers and updates its result.
  const std::string answers_key = JsonString(m, "answers_key");
  if (!answers_key.empty() && answers_key == spec.answers_key()) return "";

  std::vector<std::string> datasets;
  if (m.is_object() && m.contains("inputs") && m["inputs"].is_array()) {
    for (const auto& in : m["inputs"]) {
      std::string d = JsonString(in, "dataset");
      if (!d.empty()) datasets.push_back(d);
    }
  }
  std::string what = absl::StrCat(
      "run ", run_id.empty() ? "?" : run_id, " of model ", JsonString(m, "model"), ", ",
      JsonString(m, "track"), ", ", datasets.size(), " datasets (",
      absl::StrJoin(datasets.begin(), datasets.begin() + std::min<size_t>(datasets.size(), 6),
                    ", "),
      datasets.size() > 6 ? ", ..." : "", "), ", GroupedNumber(JsonCount(m, "answered")), "/",
      GroupedNumber(JsonCount(m, "questions")), " answered");
  const std::string finished = JsonString(m, "finished");
  if (!finished.empty()) absl::StrAppend(&what, ", finished ", finished);
  return what;
}

absl::Status CheckResultFolder(const Suite& suite, const v1::RunSpec& spec,
                               const std::string& out_dir, bool replace, std::ostream& note) {
  const std::string folder = JoinPath(out_dir, ModelFolderName(spec.model()));
  absl::Status st = CheckOutputFolder(folder);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(spec.model(), ": ", st.message()));
  const std::string other = DescribeOtherResult(folder, spec, JoinPath(out_dir, ".medeval"));
  if (other.empty()) return absl::OkStatus();
  if (replace) {
    note << "medeval: " << spec.model() << ": replacing the result in " << folder << " (" << other
         << ") when this run finishes (--replace)\n";
    return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (const Dataset& ds : suite.datasets) names.push_back(ds.file.name);
  return absl::InvalidArgumentError(absl::StrCat(
      folder, " holds the result of another run: ", other, ".\n  This run (",
      TrackName(suite.track), ", ", names.size(), " datasets: ", absl::StrJoin(names, ", "), ", ",
      GroupedNumber(suite.question_count()),
      " questions, its own settings) would replace it. Nothing was asked; choose another "
      "--out, or pass --replace to replace it."));
}

}  // namespace medeval
