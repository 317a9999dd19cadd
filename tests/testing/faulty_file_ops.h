// A FileOps for tests that behaves like a real disk having a bad day: it
// passes calls to the real file system but can run out of space after a
// number of bytes, fail writes or fsyncs with an errno, "crash" (every later
// change fails with EIO and reaches nothing), and forget directory entries
// that were created or renamed since their directory was last fsynced, as a
// power cut would.
//
// Install with ScopedFaultyFileOps; faults apply to paths containing a given
// substring.
//
// Thread-safety: thread-safe (one mutex).
#ifndef MEDEVAL_TESTS_TESTING_FAULTY_FILE_OPS_H_
#define MEDEVAL_TESTS_TESTING_FAULTY_FILE_OPS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/file_ops.h"

namespace medeval::testing {

class FaultyFileOps : public FileOps {
 public:
  // `save_dir`: a folder on the same file system where files replaced by an
  // unsynced rename are kept, so LoseUnsyncedEntries can bring them back.
  explicit FaultyFileOps(std::string save_dir);

  // Writes to files whose path contains `match` succeed for `bytes` more
  // bytes in all (a short write reaches the limit), then fail with `err`
  // (ENOSPC: a full disk).
  void FailWritesAfter(const std::string& match, uint64_t bytes, int err);
  // fsync/fdatasync of files whose path contains `match` fail with `err`.
  void FailSyncs(const std::string& match, int err);
  // The process "dies" at the first rename whose target contains `match`:
  // that rename and every later change fail with EIO and do nothing.
  void CrashAtRename(const std::string& match);
  bool crashed();
  // Clears every fault (not the record of unsynced entries).
  void Heal();
  // Undoes creations and renames not yet made durable by an fsync of their
  // directory (or a syncfs), newest first. Returns how many were undone.
  int LoseUnsyncedEntries();

  int Open(const char* path, int flags, mode_t mode) override;
  int Close(int fd) override;
  ssize_t Write(int fd, const void* buf, size_t n) override;
  ssize_t Pwrite(int fd, const void* buf, size_t n, off_t offset) override;
  int Fsync(int fd) override;
  int Fdatasync(int fd) override;
  int Syncfs(int fd) override;
  int Ftruncate(int fd, off_t size) override;
  int Rename(const char* from, const char* to) override;
  int Unlink(const char* path) override;

  // Counts of calls that failed by injection.
  int injected() {
    absl::MutexLock l(&mu_);
    return injected_;
  }

 private:
  struct Entry {
    std::string dir;
    std::string path;   // created, or the rename's target
    std::string from;   // the rename's source ("" for a creation)
    std::string saved;  // what the rename replaced, kept here ("" if nothing)
  };
  // How many of `n` bytes to `fd` may be written; -1 (errno set) to fail.
  ssize_t Allow(int fd, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int SyncFault(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string save_dir_;
  absl::Mutex mu_;
  std::map<int, std::string> paths_ ABSL_GUARDED_BY(mu_);  // open fds
  std::string write_match_ ABSL_GUARDED_BY(mu_);
  uint64_t write_budget_ ABSL_GUARDED_BY(mu_) = 0;
  int write_err_ ABSL_GUARDED_BY(mu_) = 0;
  std::string sync_match_ ABSL_GUARDED_BY(mu_);
  int sync_err_ ABSL_GUARDED_BY(mu_) = 0;
  std::string crash_match_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Entry> unsynced_ ABSL_GUARDED_BY(mu_);
  int saves_ ABSL_GUARDED_BY(mu_) = 0;
  int injected_ ABSL_GUARDED_BY(mu_) = 0;
};

// Installs `ops` as the process's FileOps for its lifetime.
class ScopedFileOps {
 public:
  explicit ScopedFileOps(FileOps* ops) { SetFileOpsForTesting(ops); }
  ~ScopedFileOps() { SetFileOpsForTesting(nullptr); }
  ScopedFileOps(const ScopedFileOps&) = delete;
  ScopedFileOps& operator=(const ScopedFileOps&) = delete;
};

}  // namespace medeval::testing

#endif  // MEDEVAL_TESTS_TESTING_FAULTY_FILE_OPS_H_
