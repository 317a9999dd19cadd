// Checks for files read from a user's suite folder: the path is resolved
// (symlinks followed) before it is checked to be inside the folder, and only
// regular files are read (a FIFO would block the reader forever, a device
// like /dev/zero would never end).
//
// Thread-safe (stateless).
#ifndef MEDEVAL_COMMON_INPUT_PATH_H_
#define MEDEVAL_COMMON_INPUT_PATH_H_

#include <string>

namespace medeval {

// The folder with every symlink resolved ("" when it does not resolve).
std::string ResolvedPath(const std::string& path);

// Why the file at `path` must not be read as input of the suite whose
// resolved root is `root_real`, or "" when it may: it does not exist, links
// outside the folder, or is not a regular file. `shown` names it in the
// message.
std::string InputFileProblem(const std::string& path, const std::string& root_real,
                             const std::string& shown);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_INPUT_PATH_H_
