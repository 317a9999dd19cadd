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
  auto check = [&](const std::string& base, const nlohmann::json& entry, const char* kind) {
    if (!entry.is_object() || !entry.contains("path") || !entry.contains("sha256")) return;
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
  for (const auto& o : m["outputs"]) check(dir, o, "output");
  if (!data_dir.empty() && m.contains("inputs") && m["inputs"].is_array()) {
    for (const auto& i : m["inputs"]) check(data_dir, i, "input");
  }
  return r;
}

}  // namespace medeval
