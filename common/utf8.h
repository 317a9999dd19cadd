// UTF-8 validation (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_UTF8_H_
#define MEDEVAL_COMMON_UTF8_H_

#include <cstddef>
#include <string>

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

// `s` with each invalid sequence (as FindInvalidUtf8 sees them, one byte at a
// time) replaced by U+FFFD; `*replaced` (optional) gets how many were.
std::string ReplaceInvalidUtf8(absl::string_view s, size_t* replaced = nullptr);

// True when `s` holds nothing a reader would see: empty, or only Unicode
// white space (U+0009-000D, U+0020, U+0085, U+00A0, U+1680, U+2000-200A,
// U+2028, U+2029, U+202F, U+205F, U+3000) and the invisible format
// characters models emit (U+200B-200D, U+2060, U+FEFF). Invalid UTF-8 is
// something to see.
bool IsBlankText(absl::string_view s);

// `s` safe to print on a terminal: control characters (C0, DEL and the C1
// range U+0080..U+009F) and bytes that are not valid UTF-8 become \xNN, and a
// backslash becomes \\, so text from the network cannot move the cursor,
// clear the screen or forge lines.
std::string EscapeControl(absl::string_view s);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_UTF8_H_
