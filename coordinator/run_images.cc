#include "coordinator/run_images.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/media_type.h"
#include "common/sha256.h"

namespace medeval {
namespace {

// Renders every PDF on a few threads: a first run over a suite of reports is
// bound by rendering (about half a second per page at 150 dpi).
std::vector<absl::StatusOr<RenderedPdf>> RenderAll(const std::vector<std::string>& pdfs,
                                                   const std::string& cache_dir,
                                                   const PdfRenderOptions& options) {
  std::vector<absl::StatusOr<RenderedPdf>> out(pdfs.size(),
                                               absl::StatusOr<RenderedPdf>(absl::UnknownError("")));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < pdfs.size(); i = next++)
      out[i] = RenderPdf(pdfs[i], cache_dir, options);
  };
  const size_t n = std::min<size_t>(pdfs.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RunImages>> RunImages::Load(const Suite& suite,
                                                                 const std::string& input_dir,
                                                                 const std::string& cache_dir,
                                                                 const PdfRenderOptions& pdf) {
  auto images = std::make_shared<RunImages>();
  std::vector<std::string> pdf_names, pdf_paths;
  for (const Dataset& ds : suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) {
      for (absl::string_view p : ds.images(i)) {
        const std::string name(p);
        if (images->parts_.contains(name)) continue;
        std::vector<ImageBlob>& parts = images->parts_[name];
        auto bytes = ReadFile(JoinPath(input_dir, name));
        if (!bytes.ok()) return bytes.status();
        const MediaType type = SniffMediaType(*bytes);
        if (type == MediaType::kPdf) {
          pdf_names.push_back(name);
          pdf_paths.push_back(JoinPath(input_dir, name));
        } else if (type == MediaType::kUnknown) {
          return absl::InvalidArgumentError(absl::StrCat(name, ": not an image"));
        } else {
          images->bytes_ += bytes->size();
          const std::string sha = Sha256Hex(*bytes);
          parts.push_back(
              {name, MimeType(type), sha, std::make_shared<const std::string>(std::move(*bytes))});
        }
      }
    }
  }
  std::vector<absl::StatusOr<RenderedPdf>> rendered = RenderAll(pdf_paths, cache_dir, pdf);
  for (size_t i = 0; i < rendered.size(); ++i) {
    if (!rendered[i].ok()) return rendered[i].status();
    images->rendered_ += rendered[i]->rendered_now;
    std::vector<ImageBlob>& parts = images->parts_[pdf_names[i]];
    for (size_t k = 0; k < rendered[i]->pages.size(); ++k) {
      auto png = ReadFile(rendered[i]->pages[k]);
      if (!png.ok()) return png.status();
      images->bytes_ += png->size();
      const std::string sha = Sha256Hex(*png);
      parts.push_back({absl::StrCat(pdf_names[i], "#page=", k + 1), "image/png", sha,
                       std::make_shared<const std::string>(std::move(*png))});
    }
  }
  for (const auto& [name, parts] : images->parts_) {
    for (const ImageBlob& b : parts) ImageStore::Global().Put(b.sha256, b.data);
  }
  return std::shared_ptr<const RunImages>(std::move(images));
}

ImageStore& ImageStore::Global() {
  static auto* store = new ImageStore();
  return *store;
}

void ImageStore::Put(const std::string& sha256, const std::shared_ptr<const std::string>& data) {
  absl::MutexLock lock(&mu_);
  // Forget bytes no run holds any more, now and then.
  if (bytes_.size() > 1024 && bytes_.size() % 1024 == 0) {
    absl::erase_if(bytes_, [](const auto& kv) { return kv.second.expired(); });
  }
  auto& slot = bytes_[sha256];
  if (slot.expired()) slot = data;
}

std::shared_ptr<const std::string> ImageStore::Get(const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  auto it = bytes_.find(sha256);
  return it == bytes_.end() ? nullptr : it->second.lock();
}

const std::vector<ImageBlob>& RunImages::Parts(absl::string_view path) const {
  static const auto* none = new std::vector<ImageBlob>();
  auto it = parts_.find(path);
  return it == parts_.end() ? *none : it->second;
}

}  // namespace medeval
