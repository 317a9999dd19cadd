#include "common/utf8.h"

#include <cstdint>

namespace medeval {

size_t FindInvalidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return absl::string_view::npos;
}

size_t Utf8Length(absl::string_view s) {
  size_t count = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++count;
  }
  return count;
}

absl::string_view Utf8Prefix(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string ReplaceInvalidUtf8(absl::string_view s, size_t* replaced) {
  std::string out;
  out.reserve(s.size());
  size_t count = 0;
  while (!s.empty()) {
    const size_t bad = FindInvalidUtf8(s);
    if (bad == absl::string_view::npos) {
      out.append(s.data(), s.size());
      break;
    }
    out.append(s.data(), bad);
    out.append("\xEF\xBF\xBD");  // U+FFFD
    ++count;
    s.remove_prefix(bad + 1);
  }
  if (replaced != nullptr) *replaced = count;
  return out;
}

namespace {

bool IsBlankCodePoint(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x2060 || cp == 0x3000 || cp == 0xFEFF;
}

}  // namespace

bool IsBlankText(absl::string_view s) {
  if (!IsValidUtf8(s)) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    if (!IsBlankCodePoint(cp)) return false;
    i += len;
  }
  return true;
}


std::string EscapeControl(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [&out](unsigned char c) {
    static const char kDigits[] = "0123456789abcdef";
    out += "\\x";
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  };
  while (!s.empty()) {
    const size_t bad = FindInvalidUtf8(s);
    const absl::string_view valid = s.substr(0, bad == absl::string_view::npos ? s.size() : bad);
    for (size_t i = 0; i < valid.size(); ++i) {
      const auto c = static_cast<unsigned char>(valid[i]);
      if (c < 0x20 || c == 0x7F) {
        hex(c);
      } else if (c == '\\') {
        out += "\\\\";
      } else if (c == 0xC2 && i + 1 < valid.size() &&
                 static_cast<unsigned char>(valid[i + 1]) <= 0x9F) {
        // U+0080..U+009F (C1 controls, e.g. CSI): both bytes escaped.
        hex(c);
        hex(static_cast<unsigned char>(valid[++i]));
      } else {
        out += static_cast<char>(c);
      }
    }
    if (bad == absl::string_view::npos) break;
    hex(static_cast<unsigned char>(s[bad]));
    s.remove_prefix(bad + 1);
  }
  return out;
}

}  // namespace medeval
