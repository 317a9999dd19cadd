#include "tests/testing/faulty_file_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace medeval::testing {

FaultyFileOps::FaultyFileOps(std::string save_dir) : save_dir_(std::move(save_dir)) {}

void FaultyFileOps::FailWritesAfter(const std::string& match, uint64_t bytes, int err) {
  absl::MutexLock l(&mu_);
  write_match_ = match;
  write_budget_ = bytes;
  write_err_ = err;
}

void FaultyFileOps::FailSyncs(const std::string& match, int err) {
  absl::MutexLock l(&mu_);
  sync_match_ = match;
  sync_err_ = err;
}

void FaultyFileOps::CrashAtRename(const std::string& match) {
  absl::MutexLock l(&mu_);
  crash_match_ = match;
}

bool FaultyFileOps::crashed() {
  absl::MutexLock l(&mu_);
  return crashed_;
}

void FaultyFileOps::Heal() {
  absl::MutexLock l(&mu_);
  write_match_.clear();
  write_err_ = 0;
  sync_match_.clear();
  sync_err_ = 0;
  crash_match_.clear();
  crashed_ = false;
}

int FaultyFileOps::LoseUnsyncedEntries() {
  absl::MutexLock l(&mu_);
  int undone = 0;
  for (auto it = unsynced_.rbegin(); it != unsynced_.rend(); ++it) {
    if (it->from.empty()) {
      if (::unlink(it->path.c_str()) == 0) ++undone;
      continue;
    }
    if (::rename(it->path.c_str(), it->from.c_str()) == 0) ++undone;
    if (!it->saved.empty()) ::rename(it->saved.c_str(), it->path.c_str());
  }
  unsynced_.clear();
  return undone;
}

ssize_t FaultyFileOps::Allow(int fd, size_t n) {
  if (crashed_) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  auto it = paths_.find(fd);
  if (write_err_ == 0 || it == paths_.end() || !absl::StrContains(it->second, write_match_)) {
    return static_cast<ssize_t>(n);
  }
  if (write_budget_ == 0) {
    ++injected_;
    errno = write_err_;
    return -1;
  }
  const size_t allowed = static_cast<size_t>(std::min<uint64_t>(write_budget_, n));
  write_budget_ -= allowed;
  return static_cast<ssize_t>(allowed);
}

int FaultyFileOps::SyncFault(int fd) {
  if (crashed_) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  auto it = paths_.find(fd);
  if (sync_err_ != 0 && it != paths_.end() && absl::StrContains(it->second, sync_match_)) {
    ++injected_;
    errno = sync_err_;
    return -1;
  }
  return 0;
}

int FaultyFileOps::Open(const char* path, int flags, mode_t mode) {
  absl::MutexLock l(&mu_);
  const bool creates = (flags & O_CREAT) != 0 && ::access(path, F_OK) != 0;
  if (crashed_ && (flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC)) != 0) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  int fd = FileOps::Open(path, flags, mode);
  if (fd < 0) return fd;
  paths_[fd] = path;
  if (creates) unsynced_.push_back({DirName(path), path, "", ""});
  return fd;
}

int FaultyFileOps::Close(int fd) {
  absl::MutexLock l(&mu_);
  paths_.erase(fd);
  return FileOps::Close(fd);
}

ssize_t FaultyFileOps::Write(int fd, const void* buf, size_t n) {
  absl::MutexLock l(&mu_);
  ssize_t allowed = Allow(fd, n);
  if (allowed <= 0) return allowed;
  return FileOps::Write(fd, buf, static_cast<size_t>(allowed));
}

ssize_t FaultyFileOps::Pwrite(int fd, const void* buf, size_t n, off_t offset) {
  absl::MutexLock l(&mu_);
  ssize_t allowed = Allow(fd, n);
  if (allowed <= 0) return allowed;
  return FileOps::Pwrite(fd, buf, static_cast<size_t>(allowed), offset);
}

int FaultyFileOps::Fsync(int fd) {
  absl::MutexLock l(&mu_);
  if (SyncFault(fd) != 0) return -1;
  int rc = FileOps::Fsync(fd);
  auto it = paths_.find(fd);
  if (rc == 0 && it != paths_.end()) {
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      // The directory's entries are durable now.
      const std::string dir = it->second;
      unsynced_.erase(std::remove_if(unsynced_.begin(), unsynced_.end(),
                                     [&](const Entry& e) { return e.dir == dir; }),
                      unsynced_.end());
    }
  }
  return rc;
}

int FaultyFileOps::Fdatasync(int fd) {
  absl::MutexLock l(&mu_);
  if (SyncFault(fd) != 0) return -1;
  return FileOps::Fdatasync(fd);
}

int FaultyFileOps::Syncfs(int fd) {
  absl::MutexLock l(&mu_);
  if (SyncFault(fd) != 0) return -1;
  int rc = FileOps::Syncfs(fd);
  if (rc == 0) unsynced_.clear();
  return rc;
}

int FaultyFileOps::Ftruncate(int fd, off_t size) {
  absl::MutexLock l(&mu_);
  if (crashed_) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  return FileOps::Ftruncate(fd, size);
}

int FaultyFileOps::Rename(const char* from, const char* to) {
  absl::MutexLock l(&mu_);
  if (!crash_match_.empty() && absl::StrContains(to, crash_match_)) crashed_ = true;
  if (crashed_) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  std::string saved;
  struct stat st;
  if (::lstat(to, &st) == 0 && S_ISREG(st.st_mode)) {
    saved = JoinPath(save_dir_, absl::StrCat("saved-", ++saves_));
    if (::link(to, saved.c_str()) != 0) saved.clear();
  }
  int rc = FileOps::Rename(from, to);
  if (rc == 0) unsynced_.push_back({DirName(to), to, from, saved});
  return rc;
}

int FaultyFileOps::Unlink(const char* path) {
  absl::MutexLock l(&mu_);
  if (crashed_) {
    ++injected_;
    errno = EIO;
    return -1;
  }
  return FileOps::Unlink(path);
}

}  // namespace medeval::testing
