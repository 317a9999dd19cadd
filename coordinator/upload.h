// What a Submit stream delivers, checked as it arrives: the first message
// holds the run's spec and the manifest (path, size, SHA-256 of every file);
// then each file comes whole, in chunks. No number the client declares is
// trusted before it is checked against the caps, nothing is allocated from
// a declared size, and the upload is complete only when every file of the
// manifest arrived with exactly its size and digest.
//
// Thread-safety: not thread-safe (one reactor's reads are sequential).
#ifndef MEDEVAL_COORDINATOR_UPLOAD_H_
#define MEDEVAL_COORDINATOR_UPLOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/sha256.h"
#include "coordinator/state_dir.h"
#include "proto/medeval.pb.h"

namespace medeval {

class UploadReceiver {
 public:
  struct Limits {
    uint64_t max_file_bytes = uint64_t{1} << 30;
    uint64_t max_upload_bytes = uint64_t{4} << 30;
    size_t max_files = 1 << 20;
  };
  explicit UploadReceiver(Limits limits) : limits_(limits) {}

  // Takes one message of the stream (its data is moved out). An error ends
  // the upload: kInvalidArgument for a malformed stream, kResourceExhausted
  // past a cap, kDataLoss for a file whose digest does not match.
  absl::Status Add(v1::SubmitChunk* chunk);
  // After the client half-closed the stream: the spec and the files, when
  // every file of the manifest is complete; kInvalidArgument otherwise (an
  // upload cut short creates nothing).
  absl::StatusOr<v1::RunSpec> Complete(std::vector<UploadedFile>* files);

  // Bytes received so far, and declared in the manifest.
  uint64_t received() const { return received_; }
  uint64_t declared() const { return declared_; }

 private:
  absl::Status AddManifest(const v1::UploadManifest& manifest);
  absl::Status StartFile(const v1::FileHeader& header);
  absl::Status EndFile();

  const Limits limits_;
  v1::RunSpec spec_;
  bool have_spec_ = false;
  std::vector<v1::ManifestEntry> manifest_;
  absl::flat_hash_map<std::string, size_t> index_;  // path -> manifest position
  std::vector<UploadedFile> files_;                 // in manifest order, filled as they come
  std::vector<bool> started_;
  size_t current_ = SIZE_MAX;  // index of the file being received
  std::unique_ptr<Sha256Hasher> hasher_;
  size_t completed_ = 0;
  uint64_t received_ = 0;
  uint64_t declared_ = 0;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_UPLOAD_H_
