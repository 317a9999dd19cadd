// A file written in pieces, without holding it in memory: bytes go to a
// temporary name through a small buffer while their SHA-256 is computed;
// Commit() makes the file durable and gives it its final name. A writer
// dropped before Commit() removes its temporary file, so a failure never
// leaves a partial file under the final name.
//
// Not thread-safe: one writer per thread.
#ifndef MEDEVAL_COMMON_FILE_WRITER_H_
#define MEDEVAL_COMMON_FILE_WRITER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"

namespace medeval {

class FileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<FileWriter>> Create(const std::string& path);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Errors are sticky: after one, Append does nothing and Commit reports it.
  void Append(absl::string_view data);
  // Flushes, fsyncs, renames into place and syncs the directory.
  absl::Status Commit();
  // Hex SHA-256 of everything appended (after Commit).
  const std::string& sha256() const { return sha256_; }
  uint64_t size() const { return size_; }

 private:
  FileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  void Flush();

  const std::string path_;
  const std::string tmp_;
  int fd_;
  std::string buffer_;
  Sha256Hasher hasher_;
  std::string sha256_;
  uint64_t size_ = 0;
  absl::Status error_;
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_FILE_WRITER_H_
