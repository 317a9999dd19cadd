#include "common/zip_archive.h"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_ops.h"
#include "common/file_util.h"

namespace medeval {
namespace {

// 2000-01-01 00:00:00 in MS-DOS format, the timestamp of every entry.
constexpr zip_uint16_t kDosDate = ((2000 - 1980) << 9) | (1 << 5) | 1;
constexpr zip_uint16_t kDosTime = 0;

std::string ZipErrorString(int code) {
  zip_error_t err;
  zip_error_init_with_code(&err, code);
  std::string msg = zip_error_strerror(&err);
  zip_error_fini(&err);
  return msg;
}

}  // namespace

absl::Status WriteZip(const std::string& zip_path, const std::vector<std::string>& folders,
                      const std::vector<ZipEntry>& entries) {
  std::string tmp = absl::StrCat(zip_path, ".tmp.", ::getpid());
  ::unlink(tmp.c_str());
  int code = 0;
  zip_t* za = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (za == nullptr) {
    return absl::InternalError(
        absl::StrCat(zip_path, ": cannot create zip: ", ZipErrorString(code)));
  }
  auto fail = [&](const std::string& what) {
    std::string msg = absl::StrCat(zip_path, ": ", what, ": ", zip_strerror(za));
    zip_discard(za);
    ::unlink(tmp.c_str());
    return absl::InternalError(msg);
  };
  for (const std::string& folder : folders) {
    std::string name = absl::EndsWith(folder, "/") ? folder : absl::StrCat(folder, "/");
    zip_int64_t idx = zip_dir_add(za, name.c_str(), ZIP_FL_ENC_UTF_8);
    if (idx < 0) return fail(absl::StrCat("add folder ", name));
    zip_file_set_dostime(za, static_cast<zip_uint64_t>(idx), kDosTime, kDosDate, 0);
  }
  for (const ZipEntry& e : entries) {
    zip_source_t* src = zip_source_file(za, e.file_path.c_str(), 0, 0) /* 0: to the end */;
    if (src == nullptr) return fail(absl::StrCat("read ", e.file_path));
    zip_int64_t idx = zip_file_add(za, e.name.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (idx < 0) {
      zip_source_free(src);
      return fail(absl::StrCat("add ", e.name));
    }
    zip_file_set_dostime(za, static_cast<zip_uint64_t>(idx), kDosTime, kDosDate, 0);
    zip_set_file_compression(za, static_cast<zip_uint64_t>(idx), ZIP_CM_DEFLATE, 9);
  }
  if (zip_close(za) != 0) return fail("write");
  // The zip's bytes are on disk before its name is.
  int fd = Files().Open(tmp.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0 || Files().Fsync(fd) != 0) {
    int err = errno;
    if (fd >= 0) Files().Close(fd);
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("fsync ", tmp));
  }
  Files().Close(fd);
  if (Files().Rename(tmp.c_str(), zip_path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename to ", zip_path));
  }
  return SyncDir(DirName(zip_path));
}

absl::StatusOr<std::vector<ZipMember>> ReadZip(const std::string& zip_path) {
  int code = 0;
  zip_t* za = zip_open(zip_path.c_str(), ZIP_RDONLY, &code);
  if (za == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(zip_path, ": not a readable zip: ", ZipErrorString(code)));
  }
  std::vector<ZipMember> out;
  zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0) continue;
    ZipMember m;
    m.name = st.name;
    m.is_dir = absl::EndsWith(m.name, "/");
    if (!m.is_dir) {
      zip_file_t* zf = zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0);
      if (zf == nullptr) {
        std::string msg = absl::StrCat(zip_path, ": cannot read ", m.name, ": ", zip_strerror(za));
        zip_discard(za);
        return absl::InvalidArgumentError(msg);
      }
      m.data.resize(static_cast<size_t>(st.size));
      zip_int64_t got = zip_fread(zf, m.data.data(), st.size);
      zip_fclose(zf);
      if (got < 0 || static_cast<zip_uint64_t>(got) != st.size) {
        zip_discard(za);
        return absl::InvalidArgumentError(absl::StrCat(zip_path, ": ", m.name, " is damaged"));
      }
    }
    out.push_back(std::move(m));
  }
  zip_discard(za);
  return out;
}

}  // namespace medeval
