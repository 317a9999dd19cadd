#include "cli/audit_inputs.h"

#include "absl/strings/str_cat.h"

namespace medeval::cli {

absl::StatusOr<Submission> AuditInputs::Read(size_t i) const {
  auto s = ReadSubmission(paths[i], forced_track());
  if (s.ok() && i < labels.size()) {
    s->label = labels[i];
    s->label_source = "--label";
  }
  return s;
}

absl::StatusOr<AuditInputs> LoadAuditInputs(std::vector<std::string> paths,
                                            std::vector<std::string> labels,
                                            const std::string& track, const std::string& data) {
  AuditInputs in;
  in.paths = std::move(paths);
  in.labels = std::move(labels);
  if (!track.empty()) in.track = *ParseTrack(track);  // the flag admits only track names
  if (!data.empty()) {
    LoadOptions lo;
    lo.forced_track = in.forced_track();
    lo.check_images = false;
    auto suite = LoadSuite(data, lo);
    if (!suite.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--data: ", suite.status().message()));
    }
    in.reference = std::move(*suite);
  }
  if (in.labels.size() > in.paths.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.labels.size(), " --label for ", in.paths.size(), " paths"));
  }
  return in;
}

}  // namespace medeval::cli
