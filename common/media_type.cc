#include "common/media_type.h"

#include <cstdint>

#include "absl/strings/match.h"

namespace medeval {
namespace {

uint32_t Be16(absl::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 8) | static_cast<uint8_t>(b[at + 1]);
}
uint32_t Be32(absl::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(absl::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8) | static_cast<uint8_t>(b[at]);
}
uint32_t Le24(absl::string_view b, size_t at) {
  return Le16(b, at) | (uint32_t{static_cast<uint8_t>(b[at + 2])} << 16);
}

std::optional<ImageSize> Size(uint32_t w, uint32_t h) {
  if (w == 0 || h == 0 || w > (1u << 30) || h > (1u << 30)) return std::nullopt;
  return ImageSize{static_cast<int>(w), static_cast<int>(h)};
}

std::optional<ImageSize> PngSize(absl::string_view b) {
  // Signature, then the IHDR chunk: length 13, "IHDR", width, height.
  if (b.size() < 33 || Be32(b, 8) != 13 || b.substr(12, 4) != "IHDR") return std::nullopt;
  return Size(Be32(b, 16), Be32(b, 20));
}

std::optional<ImageSize> JpegSize(absl::string_view b) {
  // Walk the marker segments up to a start-of-frame (SOF0..SOF15 but not
  // DHT C4, JPG C8, DAC CC), which holds the height and width.
  size_t at = 2;
  while (at + 4 <= b.size()) {
    if (static_cast<uint8_t>(b[at]) != 0xFF) return std::nullopt;
    const uint8_t marker = static_cast<uint8_t>(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    const uint32_t len = Be16(b, at + 2);
    if (len < 2) return std::nullopt;
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (at + 9 > b.size()) return std::nullopt;
      return Size(Be16(b, at + 7), Be16(b, at + 5));
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // no frame before the data
    at += 2 + len;
  }
  return std::nullopt;
}

std::optional<ImageSize> WebpSize(absl::string_view b) {
  if (b.size() < 30) return std::nullopt;
  absl::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8 ") {
    if (b.substr(23, 3) != "\x9d\x01\x2a") return std::nullopt;
    return Size(Le16(b, 26) & 0x3FFF, Le16(b, 28) & 0x3FFF);
  }
  if (chunk == "VP8L") {
    if (static_cast<uint8_t>(b[20]) != 0x2F) return std::nullopt;
    const uint32_t bits = Le16(b, 21) | (Le16(b, 23) << 16);
    return Size((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
  }
  if (chunk == "VP8X") return Size(Le24(b, 24) + 1, Le24(b, 27) + 1);
  return std::nullopt;
}

}  // namespace

MediaType SniffMediaType(absl::string_view h) {
  if (absl::StartsWith(h, "\x89PNG\r\n\x1a\n")) return MediaType::kPng;
  if (absl::StartsWith(h, "\xFF\xD8\xFF")) return MediaType::kJpeg;
  if (absl::StartsWith(h, "GIF87a") || absl::StartsWith(h, "GIF89a")) return MediaType::kGif;
  if (h.size() >= 12 && absl::StartsWith(h, "RIFF") && h.substr(8, 4) == "WEBP") {
    return MediaType::kWebp;
  }
  if (absl::StartsWith(h, "%PDF-")) return MediaType::kPdf;
  return MediaType::kUnknown;
}

const char* MimeType(MediaType t) {
  switch (t) {
    case MediaType::kPng:
      return "image/png";
    case MediaType::kJpeg:
      return "image/jpeg";
    case MediaType::kGif:
      return "image/gif";
    case MediaType::kWebp:
      return "image/webp";
    case MediaType::kPdf:
      return "application/pdf";
    case MediaType::kUnknown:
      return "";
  }
  return "";
}

}  // namespace medeval

namespace medeval {

std::optional<ImageSize> ReadImageSize(absl::string_view bytes) {
  switch (SniffMediaType(bytes)) {
    case MediaType::kPng:
      return PngSize(bytes);
    case MediaType::kJpeg:
      return JpegSize(bytes);
    case MediaType::kGif:
      if (bytes.size() < 10) return std::nullopt;
      return Size(Le16(bytes, 6), Le16(bytes, 8));
    case MediaType::kWebp:
      return WebpSize(bytes);
    case MediaType::kPdf:
    case MediaType::kUnknown:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace medeval
