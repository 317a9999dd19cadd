#include "common/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_ops.h"
#include "common/file_util.h"

namespace medeval {
namespace {

constexpr size_t kBufferBytes = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<FileWriter>> FileWriter::Create(const std::string& path) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = Files().Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, tmp);
  return std::unique_ptr<FileWriter>(new FileWriter(path, std::move(tmp), fd));
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) {
    Files().Close(fd_);
    Files().Unlink(tmp_.c_str());
  }
}

void FileWriter::Append(absl::string_view data) {
  if (!error_.ok()) return;
  hasher_.Update(data);
  size_ += data.size();
  if (buffer_.size() + data.size() > kBufferBytes) Flush();
  if (data.size() >= kBufferBytes) {
    // Large pieces (a big answer) go straight to the file: no second copy.
    if (error_.ok() && !WriteFully(fd_, data.data(), data.size())) {
      error_ = ErrnoStatus(errno, absl::StrCat("write ", tmp_));
    }
    return;
  }
  buffer_.append(data.data(), data.size());
}

void FileWriter::Flush() {
  if (error_.ok() && !buffer_.empty() && !WriteFully(fd_, buffer_.data(), buffer_.size())) {
    error_ = ErrnoStatus(errno, absl::StrCat("write ", tmp_));
  }
  buffer_.clear();
}

absl::Status FileWriter::Commit() {
  Flush();
  if (error_.ok() && Files().Fsync(fd_) != 0) {
    error_ = ErrnoStatus(errno, absl::StrCat("fsync ", tmp_));
  }
  const int fd = fd_;
  fd_ = -1;
  if (Files().Close(fd) != 0 && error_.ok()) error_ = ErrnoStatus(errno, tmp_);
  if (error_.ok() && Files().Rename(tmp_.c_str(), path_.c_str()) != 0) {
    error_ = ErrnoStatus(errno, absl::StrCat("rename to ", path_));
  }
  if (!error_.ok()) {
    Files().Unlink(tmp_.c_str());
    return error_;
  }
  sha256_ = hasher_.HexDigest();
  return SyncDir(DirName(path_));
}

}  // namespace medeval
