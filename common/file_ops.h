// The file-system calls that durability depends on (open, write, fsync,
// truncate, rename, unlink), behind one seam so tests can replace them and
// inject the faults real disks produce: a full disk mid-write, EIO, a failing
// fsync, a crash between write and rename, directory entries lost because
// their directory was never synced.
//
// The methods keep POSIX conventions (-1 and errno on failure) so callers
// translate errors exactly as they would for the real calls. The default
// implementation is the real system calls.
//
// Thread-safety: Files() and the default FileOps are thread-safe. Replace the
// process's FileOps only while no other thread uses it (tests, at set-up and
// tear-down); a replacement must itself be thread-safe.
#ifndef MEDEVAL_COMMON_FILE_OPS_H_
#define MEDEVAL_COMMON_FILE_OPS_H_

#include <sys/types.h>

#include <cstddef>

namespace medeval {

class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int Open(const char* path, int flags, mode_t mode);
  virtual int Close(int fd);
  virtual ssize_t Write(int fd, const void* buf, size_t n);
  virtual ssize_t Pwrite(int fd, const void* buf, size_t n, off_t offset);
  virtual int Fsync(int fd);
  virtual int Fdatasync(int fd);
  // syncfs(2): everything on the file system holding `fd`.
  virtual int Syncfs(int fd);
  virtual int Ftruncate(int fd, off_t size);
  virtual int Rename(const char* from, const char* to);
  virtual int Unlink(const char* path);
};

// The FileOps every durable write in the project goes through.
FileOps& Files();

// Makes `ops` the process's FileOps (nullptr: the real calls again). For
// tests; `ops` must outlive its use.
void SetFileOpsForTesting(FileOps* ops);

// Writes all of `n` bytes (retrying short writes and EINTR); false with errno
// set when a write fails.
bool WriteFully(int fd, const char* data, size_t n);
bool PwriteFully(int fd, const char* data, size_t n, off_t offset);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_FILE_OPS_H_
