// What an image file is, told by its first bytes (not its name): the types a
// vision request can carry, and PDF reports (rendered to PNG pages first).
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_COMMON_MEDIA_TYPE_H_
#define MEDEVAL_COMMON_MEDIA_TYPE_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace medeval {

enum class MediaType { kUnknown, kPng, kJpeg, kGif, kWebp, kPdf };

MediaType SniffMediaType(absl::string_view head);
// "image/png", ...; "application/pdf" for PDF; "" for unknown.
const char* MimeType(MediaType type);

struct ImageSize {
  int width = 0;
  int height = 0;
};

// The pixel size an image's header declares: PNG IHDR, JPEG start of frame,
// GIF screen, WebP VP8/VP8L/VP8X. nullopt when the bytes are not a whole,
// well-formed header of one of those (a truncated or mislabelled file).
std::optional<ImageSize> ReadImageSize(absl::string_view bytes);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_MEDIA_TYPE_H_
