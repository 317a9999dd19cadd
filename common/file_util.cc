#include "common/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_ops.h"

namespace medeval {

absl::Status ErrnoStatus(int err, absl::string_view context) {
  std::string msg = absl::StrCat(context, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(msg);
    case EINTR:
    case EAGAIN:
      return absl::UnavailableError(msg);
    case EISDIR:
    case EINVAL:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, path);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (true) {
    if (done == out.size()) out.resize(out.size() + 65536);  // file grew, or /proc
    ssize_t n = ::read(fd, &out[done], out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

absl::Status SyncDir(const std::string& dir) {
  int fd = Files().Open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, dir);
  int rc = Files().Fsync(fd);
  int err = errno;
  Files().Close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

namespace {

// `path` names something a rename must not replace: a device (/dev/null), a
// FIFO, a socket, or a symbolic link (/dev/stdout). The bytes go to it
// instead, as a shell's `>` would send them.
absl::Status WriteThrough(const std::string& path, absl::string_view contents,
                          bool regular_target) {
  int flags = O_WRONLY | O_CLOEXEC | (regular_target ? O_TRUNC : 0);
  int fd = Files().Open(path.c_str(), flags, 0);
  if (fd < 0) return ErrnoStatus(errno, path);
  if (!WriteFully(fd, contents.data(), contents.size())) {
    int err = errno;
    Files().Close(fd);
    return ErrnoStatus(err, absl::StrCat("write ", path));
  }
  if (Files().Close(fd) != 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents, bool durable) {
  struct stat lst;
  if (::lstat(path.c_str(), &lst) == 0) {
    if (S_ISDIR(lst.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
    }
    if (!S_ISREG(lst.st_mode)) {
      struct stat target;
      const bool regular = ::stat(path.c_str(), &target) == 0 && S_ISREG(target.st_mode);
      return WriteThrough(path, contents, regular);
    }
  }
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = Files().Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, tmp);
  auto fail = [&](int err, absl::string_view what) {
    Files().Close(fd);
    Files().Unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat(what, tmp));
  };
  if (!WriteFully(fd, contents.data(), contents.size())) return fail(errno, "write ");
  if (durable && Files().Fsync(fd) != 0) return fail(errno, "fsync ");
  if (Files().Close(fd) != 0) {
    int err = errno;
    Files().Unlink(tmp.c_str());
    return ErrnoStatus(err, tmp);
  }
  if (Files().Rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    Files().Unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename to ", path));
  }
  if (durable) return SyncDir(DirName(path));
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), absl::StrCat("create directory ", path));
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoStatus(ec.value(), absl::StrCat("remove ", path));
  return absl::OkStatus();
}

absl::Status SyncFilesystem(const std::string& path) {
  int fd = Files().Open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, path);
  int rc = Files().Syncfs(fd);
  int err = errno;
  Files().Close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("syncfs ", path));
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  if (ec) return ErrnoStatus(ec.value(), dir);
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), dir);
    if (it->is_regular_file(ec)) {
      out.push_back(std::filesystem::relative(it->path(), dir, ec).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<absl::string_view> SplitLines(absl::string_view contents) {
  std::vector<absl::string_view> lines;
  size_t start = 0;
  while (start < contents.size()) {
    size_t nl = contents.find('\n', start);
    size_t end = nl == absl::string_view::npos ? contents.size() : nl;
    absl::string_view line = contents.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == absl::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  if (a.back() == '/') return absl::StrCat(a, b);
  return absl::StrCat(a, "/", b);
}

std::string DirName(absl::string_view path) {
  size_t pos = path.rfind('/');
  if (pos == absl::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

bool IsSafeRelativePath(absl::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != absl::string_view::npos) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace medeval
