#include "local/batch_export.h"

#include "absl/strings/str_cat.h"
#include "common/pdf_render.h"
#include "coordinator/run_images.h"
#include "worker/batch_format.h"
#include "worker/chat_backend.h"

namespace medeval {

std::string QuestionCustomId(absl::string_view dataset, uint32_t line) {
  return absl::StrCat(dataset, ":", line);
}

absl::Status WriteBatchInput(const Suite& suite, const std::string& model,
                             const v1::RequestParams& params, const v1::PdfOptions& pdf,
                             const std::string& pdf_cache_dir, std::ostream& out,
                             ExportCounts* counts) {
  std::shared_ptr<const RunImages> images;
  if (suite.track == Track::kV4Vlm) {
    PdfRenderOptions render;
    if (pdf.max_pages() > 0) render.max_pages = pdf.max_pages();
    if (pdf.dpi() > 0) render.dpi = pdf.dpi();
    auto loaded = RunImages::Load(suite, suite.root, pdf_cache_dir, render);
    if (!loaded.ok()) return loaded.status();
    images = *loaded;
  }
  for (const Dataset& ds : suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) {
      // The lease the coordinator would hand a worker for this question.
      v1::Lease lease;
      lease.set_dataset(ds.file.name);
      lease.set_line(ds.line(i));
      absl::string_view text = ds.question(i);
      lease.set_question(text.data(), text.size());
      for (absl::string_view img : ds.images(i)) {
        for (const ImageBlob& b : images->Parts(img)) {
          v1::ImagePart* part = lease.add_images();
          part->set_path(b.name);
          part->set_mime_type(b.mime);
          part->set_data(*b.data);
        }
      }
      std::string line = BatchInputLine(QuestionCustomId(ds.file.name, ds.line(i)),
                                        BuildChatRequest(model, params, lease));
      line.push_back('\n');
      out << line;
      if (counts != nullptr) {
        ++counts->lines;
        counts->bytes += line.size();
      }
    }
  }
  out.flush();
  if (!out) return absl::UnavailableError("writing the batch input failed");
  return absl::OkStatus();
}

}  // namespace medeval
