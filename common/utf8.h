// UTF-8 validation (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_UTF8_H_
#define MEDEVAL_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace medeval {

// Returns the byte offset of the first invalid sequence, or npos when `s` is
// valid UTF-8.
size_t FindInvalidUtf8(absl::string_view s);

inline bool IsValidUtf8(absl::string_view s) {
  return FindInvalidUtf8(s) == absl::string_view::npos;
}

// Number of code points in valid UTF-8 (each invalid byte counts as one).
size_t Utf8Length(absl::string_view s);

// The longest prefix of `s` with at most `max_bytes` bytes that does not cut a
// multi-byte sequence.
absl::string_view Utf8Prefix(absl::string_view s, size_t max_bytes);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_UTF8_H_
