#include "common/file_ops.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cerrno>

namespace medeval {
namespace {

std::atomic<FileOps*> g_override{nullptr};

}  // namespace

int FileOps::Open(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int FileOps::Close(int fd) { return ::close(fd); }
ssize_t FileOps::Write(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }
ssize_t FileOps::Pwrite(int fd, const void* buf, size_t n, off_t offset) {
  return ::pwrite(fd, buf, n, offset);
}
int FileOps::Fsync(int fd) { return ::fsync(fd); }
int FileOps::Fdatasync(int fd) { return ::fdatasync(fd); }
int FileOps::Syncfs(int fd) { return ::syncfs(fd); }
int FileOps::Ftruncate(int fd, off_t size) { return ::ftruncate(fd, size); }
int FileOps::Rename(const char* from, const char* to) { return ::rename(from, to); }
int FileOps::Unlink(const char* path) { return ::unlink(path); }

FileOps& Files() {
  static FileOps real;
  FileOps* o = g_override.load(std::memory_order_acquire);
  return o != nullptr ? *o : real;
}

void SetFileOpsForTesting(FileOps* ops) { g_override.store(ops, std::memory_order_release); }

namespace {

// Calls `write(done)` (bytes written from offset `done`, or -1 with errno)
// until all `n` bytes are written: retries EINTR, and a write of 0 is EIO.
template <typename Write>
bool WriteAll(size_t n, Write write) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (w == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

bool WriteFully(int fd, const char* data, size_t n) {
  return WriteAll(n, [&](size_t done) { return Files().Write(fd, data + done, n - done); });
}

bool PwriteFully(int fd, const char* data, size_t n, off_t offset) {
  return WriteAll(n, [&](size_t done) {
    return Files().Pwrite(fd, data + done, n - done, offset + static_cast<off_t>(done));
  });
}

}  // namespace medeval
