#include "common/pdf_render.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"

namespace medeval {
namespace {

// Poppler prints parse complaints on stderr by default; they belong in our
// log (a damaged report is reported once, as a bad input line).
void RoutePopplerMessages() {
  static const bool once = [] {
    poppler::set_debug_error_function(
        [](const std::string& msg, void*) { MEDEVAL_LOG(DEBUG) << "poppler: " << msg; }, nullptr);
    return true;
  }();
  (void)once;
}

// Opens `bytes` (which must outlive the document) or says why it cannot.
absl::StatusOr<std::unique_ptr<poppler::document>> OpenPdf(absl::string_view bytes) {
  RoutePopplerMessages();
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (doc == nullptr) return absl::InvalidArgumentError("not a readable PDF");
  if (doc->is_locked()) return absl::InvalidArgumentError("the PDF is password-protected");
  if (doc->pages() <= 0) return absl::InvalidArgumentError("the PDF has no pages");
  return doc;
}

}  // namespace

absl::Status CheckPdf(absl::string_view bytes) { return OpenPdf(bytes).status(); }

absl::StatusOr<RenderedPdf> RenderPdf(const std::string& pdf_path, const std::string& cache_root,
                                      const PdfRenderOptions& options) {
  auto bytes = ReadFile(pdf_path);
  if (!bytes.ok()) return bytes.status();
  const std::string dir =
      JoinPath(cache_root, absl::StrCat(Sha256Hex(*bytes), "-", options.dpi, "dpi"));
  auto opened = OpenPdf(*bytes);
  if (!opened.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(pdf_path, ": ", opened.status().message()));
  }
  std::unique_ptr<poppler::document> doc = std::move(*opened);
  RenderedPdf out;
  out.page_count = doc->pages();
  absl::Status st = MakeDirs(dir);
  if (!st.ok()) return st;
  poppler::page_renderer renderer;
  renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
  renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
  const int n = std::min(out.page_count, std::max(1, options.max_pages));
  for (int i = 0; i < n; ++i) {
    const std::string png = JoinPath(dir, absl::StrCat("page-", i + 1, ".png"));
    out.pages.push_back(png);
    if (PathExists(png)) continue;
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (page == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(pdf_path, ": page ", i + 1, " is damaged"));
    }
    poppler::image img = renderer.render_page(page.get(), options.dpi, options.dpi);
    const std::string tmp = absl::StrCat(png, ".tmp.", ::getpid());
    if (!img.is_valid() || !img.save(tmp, "png", options.dpi)) {
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat(pdf_path, ": page ", i + 1, " did not render"));
    }
    if (::rename(tmp.c_str(), png.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("rename to ", png));
    }
    ++out.rendered_now;
  }
  return out;
}

}  // namespace medeval
