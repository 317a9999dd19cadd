#include "audit/verify.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace medeval {

bool VerifyResult::ok() const {
  for (const auto& f : files) {
    if (f.state != "ok") return false;
  }
  return !files.empty();
}

absl::StatusOr<VerifyResult> VerifyRun(const std::string& dir, const std::string& data_dir) {
  VerifyResult r;
  r.manifest = JoinPath(dir, "manifest.json");
  auto text = ReadFile(r.manifest);
  if (!text.ok()) return text.status();
  auto m = nlohmann::json::parse(*text, nullptr, false);
  if (!m.is_object() || !m.contains("outputs") || !m["outputs"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.manifest, ": not a medeval manifest (no \"outputs\" list)"));
  }
  absl::Status bad;
  auto check = [&](const std::string& base, const nlohmann::json& entry, const char* kind,
                   size_t index) {
    if (!bad.ok()) return;
    if (!entry.is_object() || !entry.contains("path") || !entry.contains("sha256")) return;
    // The manifest is untrusted input: a wrong type is an error, not an abort.
    if (!entry["path"].is_string() || !entry["sha256"].is_string()) {
      bad = absl::InvalidArgumentError(absl::StrCat(
          r.manifest, ": ", kind, "s[", index, "]: \"path\" and \"sha256\" must be strings, got ",
          entry["path"].type_name(), " and ", entry["sha256"].type_name()));
      return;
    }
    VerifiedFile f;
    f.path = entry["path"].get<std::string>();
    f.kind = kind;
    f.expected = entry["sha256"].get<std::string>();
    if (!IsSafeRelativePath(f.path)) {
      f.state = "missing";
    } else {
      auto sha = Sha256File(JoinPath(base, f.path));
      if (!sha.ok()) {
        f.state = "missing";
      } else {
        f.actual = *sha;
        f.state = f.actual == f.expected ? "ok" : "changed";
      }
    }
    r.files.push_back(std::move(f));
  };
  for (size_t i = 0; i < m["outputs"].size(); ++i) check(dir, m["outputs"][i], "output", i);
  if (!data_dir.empty() && m.contains("inputs") && m["inputs"].is_array()) {
    for (size_t i = 0; i < m["inputs"].size(); ++i) check(data_dir, m["inputs"][i], "input", i);
  }
  if (!bad.ok()) return bad;
  return r;
}

}  // namespace medeval
