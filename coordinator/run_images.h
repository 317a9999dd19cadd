// The images of a VLM run, held in memory by the coordinator and sent to
// workers on their streams (so a worker needs no access to the data): a
// lease names each image by SHA-256 and the stream carries its bytes once
// (ImageStore). A PDF report becomes its first pages rendered as PNG (cached
// on disk by content, so a rerun does not render again); every other image
// goes as is.
//
// Thread-safety: RunImages is immutable once loaded; share it freely.
// ImageStore is thread-safe.
#ifndef MEDEVAL_COORDINATOR_RUN_IMAGES_H_
#define MEDEVAL_COORDINATOR_RUN_IMAGES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/pdf_render.h"
#include "common/suite.h"

namespace medeval {

struct ImageBlob {
  std::string name;  // the img_path entry, "#page=N" added for a PDF page
  std::string mime;
  std::string sha256;  // of data
  std::shared_ptr<const std::string> data;
};

// The bytes of every loaded image by SHA-256, for the worker streams: a
// stream looks up what its leases name without the scheduler's lock. Entries
// live as long as a run holds the bytes.
class ImageStore {
 public:
  static ImageStore& Global();
  void Put(const std::string& sha256, const std::shared_ptr<const std::string>& data);
  // nullptr when no loaded run holds these bytes.
  std::shared_ptr<const std::string> Get(const std::string& sha256);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::weak_ptr<const std::string>> bytes_ ABSL_GUARDED_BY(mu_);
};

class RunImages {
 public:
  // Loads every image the suite's questions use from `input_dir`, rendering
  // PDFs into `cache_dir`.
  static absl::StatusOr<std::shared_ptr<const RunImages>> Load(const Suite& suite,
                                                               const std::string& input_dir,
                                                               const std::string& cache_dir,
                                                               const PdfRenderOptions& pdf);

  // The image parts one img_path entry becomes (several for a PDF).
  const std::vector<ImageBlob>& Parts(absl::string_view path) const;
  size_t bytes() const { return bytes_; }
  int pdf_pages_rendered() const { return rendered_; }

 private:
  absl::flat_hash_map<std::string, std::vector<ImageBlob>> parts_;
  size_t bytes_ = 0;
  int rendered_ = 0;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_RUN_IMAGES_H_
