// Small file-system helpers that report errors as absl::Status with the path
// in the message. Output files are written to a temporary name, flushed and
// renamed, so a crash never leaves a half-written file under the final name.
//
// Thread-safe (stateless), but concurrent writers to one path race as usual.
#ifndef MEDEVAL_COMMON_FILE_UTIL_H_
#define MEDEVAL_COMMON_FILE_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

// Maps errno to a status code chosen by what the caller should do, with
// "context: strerror" as the message.
absl::Status ErrnoStatus(int err, absl::string_view context);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically (temp file + fsync + rename + fsync of
// the directory when `durable`).
absl::Status WriteFileAtomic(const std::string& path, absl::string_view contents,
                             bool durable = true);

// mkdir -p.
absl::Status MakeDirs(const std::string& path);

// rm -rf; a missing path is not an error.
absl::Status RemoveAll(const std::string& path);

// fsync(2) of a directory, so renames and new entries in it survive a crash.
absl::Status SyncDir(const std::string& dir);

// syncfs(2): everything written to the file system holding `path` reaches
// stable storage. One call instead of an fsync per file when many files are
// written at once.
absl::Status SyncFilesystem(const std::string& path);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// Names (not paths) of the entries of `dir`, sorted.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);

// Paths (relative to `dir`) of every regular file under `dir`, sorted.
absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& dir);

// Splits file contents into physical lines (without "\n" or "\r\n"); no
// final empty line for a file that ends with a newline.
std::vector<absl::string_view> SplitLines(absl::string_view contents);

// "a/b" + "c" -> "a/b/c" (no normalization beyond one separator).
std::string JoinPath(absl::string_view a, absl::string_view b);

// The folder part of a path ("a/b/c.txt" -> "a/b", "c.txt" -> ".").
std::string DirName(absl::string_view path);

// A relative path that stays inside its root: no absolute paths, no "..",
// no empty components. Used for every path that crosses the network.
bool IsSafeRelativePath(absl::string_view path);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_FILE_UTIL_H_
