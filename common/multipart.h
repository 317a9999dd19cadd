// Reading and writing multipart/form-data bodies (RFC 7578): how a file is
// uploaded to `POST /v1/files` with its purpose.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_COMMON_MULTIPART_H_
#define MEDEVAL_COMMON_MULTIPART_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

struct FormPart {
  std::string name;      // form field name
  std::string filename;  // "" for plain fields
  std::string content_type;
  std::string data;
};

// Parses `body` sent with `content_type` ("multipart/form-data;
// boundary=..."); kInvalidArgument says what is malformed.
absl::StatusOr<std::vector<FormPart>> ParseMultipart(absl::string_view content_type,
                                                     absl::string_view body);

// Builds such a body (for clients); returns it and sets `*content_type`.
std::string BuildMultipart(const std::vector<FormPart>& parts, std::string* content_type);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_MULTIPART_H_
