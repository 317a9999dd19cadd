#include "client/run_spec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"
#include "common/pdf_render.h"
#include "common/sha256.h"

namespace medeval {
namespace {

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream sos(&out);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&cos);
  cos.Trim();
  return out;
}

}  // namespace

v1::RequestParams DefaultRequestParams() {
  v1::RequestParams p;
  p.set_system_prompt("You are a helpful assistant.");
  p.set_has_system_prompt(true);
  p.set_temperature(0);
  p.set_timeout_s(600);
  p.set_max_attempts(6);
  return p;
}

absl::StatusOr<Suite> LoadSuiteForRun(const SuiteSelection& sel, std::ostream& err,
                                      int* exit_code) {
  LoadOptions opts;
  opts.forced_track = sel.track.has_value() ? &*sel.track : nullptr;
  opts.only_datasets = sel.datasets;
  // A question is sent only as the track it belongs to.
  opts.known_names_only = true;
  auto suite = LoadSuite(sel.data_dir, opts);
  if (!suite.ok()) {
    *exit_code = suite.status().code() == absl::StatusCode::kInternal ? kJobFailed : kJobBadInput;
    return suite.status();
  }
  for (const std::string& note : suite->notes) err << "medeval: note: " << note << "\n";
  std::vector<InputIssue> issues = suite->issues();
  for (const InputIssue& issue : issues) err << issue.ToString() << "\n";
  if (!issues.empty()) {
    size_t files = 0;
    for (const Dataset& ds : suite->datasets) files += ds.issues.empty() ? 0 : 1;
    if (!sel.skip_invalid) {
      *exit_code = kJobBadInput;
      return absl::InvalidArgumentError(
          absl::StrCat(issues.size(), " invalid input lines in ", files,
                       " files; nothing was asked. Fix them, or pass --skip-invalid to leave "
                       "them out (they are listed in the manifest)."));
    }
    err << "medeval: leaving out " << issues.size() << " invalid lines (--skip-invalid)\n";
  }
  if (suite->question_count() == 0) {
    *exit_code = kJobBadInput;
    return absl::InvalidArgumentError(absl::StrCat(sel.data_dir, ": no questions to ask"));
  }
  *exit_code = kJobOk;
  return suite;
}

v1::RunSpec MakeRunSpec(const Suite& suite, const std::string& model,
                        const v1::RequestParams& params, const v1::ModelLimits& limits,
                        const SuiteSelection& selection, bool allow_incomplete_zip) {
  const bool skip_invalid = selection.skip_invalid;
  v1::RunSpec spec;
  spec.set_model(model);
  *spec.mutable_limits() = limits;  // not in the key: budgets do not change answers
  spec.set_track(std::string(TrackName(suite.track)));
  *spec.mutable_params() = params;
  spec.set_skip_invalid(skip_invalid);
  spec.set_allow_incomplete_zip(allow_incomplete_zip);
  // Everything that reaches the model but the images (and the zip rule).
  std::string common = absl::StrCat("model\n", model, "\ntrack\n", spec.track(), "\n");
  for (const Dataset& ds : suite.datasets) {
    absl::StrAppend(&common, ds.file.name, " ", ds.sha256, "\n");
  }
  absl::StrAppend(&common, "skip_invalid ", skip_invalid, " allow_incomplete ",
                  allow_incomplete_zip, "\n");
  if (suite.track == Track::kV4Vlm) {
    // Other pages or resolution are other inputs to the model.
    const PdfRenderOptions defaults;
    spec.mutable_pdf()->set_max_pages(selection.pdf.max_pages() > 0 ? selection.pdf.max_pages()
                                                                    : defaults.max_pages);
    spec.mutable_pdf()->set_dpi(selection.pdf.dpi() > 0 ? selection.pdf.dpi() : defaults.dpi);
    absl::StrAppend(&common, "pdf ", spec.pdf().max_pages(), " ", spec.pdf().dpi(), "\n");
  }
  // Timeout and attempts do not change answers: resuming with other values is fine.
  v1::RequestParams answer_params = params;
  answer_params.clear_timeout_s();
  answer_params.clear_max_attempts();
  absl::StrAppend(&common, DeterministicBytes(answer_params));
  Sha256Hasher h;
  // Kept in this order so runs without images keep the keys they had.
  const std::string marker = absl::StrCat("skip_invalid ", skip_invalid);
  const size_t split = common.find(marker);
  h.Update(absl::string_view(common).substr(0, split));
  // The images are what the model is shown too: another image is another
  // run, which takes over the answers of the questions whose images did not
  // change (answers_key).
  std::string images;
  for (const auto& [path, sha] : suite.image_sha256) {
    absl::StrAppend(&images, "image ", path.size(), " ", path, " ", sha, "\n");
  }
  h.Update(images);
  h.Update(absl::string_view(common).substr(split));
  if (suite.track == Track::kV4Vlm) spec.set_answers_key(Sha256Hex(common));
  spec.set_idempotency_key(h.HexDigest());
  return spec;
}

}  // namespace medeval
