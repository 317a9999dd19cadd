// PDF reports as PNG pages (poppler), for models that take images: the first
// `max_pages` pages at `dpi`, written to a cache folder named by the PDF's
// SHA-256 and the resolution, so a rerun (or another run of the same suite)
// does not render again.
//
// Thread-safety: safe to call concurrently for different cache folders;
// pages are written to a temporary name and renamed.
#ifndef MEDEVAL_COMMON_PDF_RENDER_H_
#define MEDEVAL_COMMON_PDF_RENDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

struct PdfRenderOptions {
  int max_pages = 4;
  int dpi = 150;
};

struct RenderedPdf {
  std::vector<std::string> pages;  // PNG files, in page order
  int page_count = 0;              // of the whole document
  int rendered_now = 0;            // pages rendered by this call (0: all cached)
};

// Whether `bytes` open as a PDF with at least one page (kInvalidArgument
// saying why not): the check input validation makes before a run starts.
absl::Status CheckPdf(absl::string_view bytes);

absl::StatusOr<RenderedPdf> RenderPdf(const std::string& pdf_path, const std::string& cache_root,
                                      const PdfRenderOptions& options);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_PDF_RENDER_H_
