#include "common/input_path.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace medeval {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string ResolvedPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

std::string InputFileProblem(const std::string& path, const std::string& root_real,
                             const std::string& shown) {
  struct stat lst;
  if (::lstat(path.c_str(), &lst) != 0) {
    return errno == ENOENT ? absl::StrCat("missing ", shown)
                           : absl::StrCat("cannot read ", shown, " (", std::strerror(errno), ")");
  }
  const std::string real = ResolvedPath(path);
  if (real.empty()) {
    return absl::StrCat(shown, " is a link to nothing (", std::strerror(errno), ")");
  }
  if (!root_real.empty() && real != root_real &&
      !absl::StartsWith(real, root_real == "/" ? root_real : root_real + "/")) {
    return absl::StrCat(shown, " links outside the suite folder (to ", real, "); not read");
  }
  struct stat st;
  if (::stat(real.c_str(), &st) != 0) {
    return absl::StrCat("cannot read ", shown, " (", std::strerror(errno), ")");
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::StrCat(shown, " is ", FileKind(st.st_mode), ", not a regular file; not read");
  }
  return "";
}

}  // namespace medeval
