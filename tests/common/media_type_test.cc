#include "common/media_type.h"

#include <string>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using testing::TempDir;

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(SniffMediaTypeTest, TellsTypesByContentNotName) {
  EXPECT_EQ(SniffMediaType("\x89PNG\r\n\x1a\n...."), MediaType::kPng);
  EXPECT_EQ(SniffMediaType(Bytes({0xFF, 0xD8, 0xFF, 0xE0})), MediaType::kJpeg);
  EXPECT_EQ(SniffMediaType("GIF89a...."), MediaType::kGif);
  EXPECT_EQ(SniffMediaType(std::string("RIFF\0\0\0\0WEBPVP8 ", 16)), MediaType::kWebp);
  EXPECT_EQ(SniffMediaType("%PDF-1.7\n"), MediaType::kPdf);
  EXPECT_EQ(SniffMediaType("<html>"), MediaType::kUnknown);
  EXPECT_EQ(SniffMediaType(""), MediaType::kUnknown);
  EXPECT_STREQ(MimeType(MediaType::kJpeg), "image/jpeg");
  EXPECT_STREQ(MimeType(MediaType::kUnknown), "");
}

TEST(ReadImageSizeTest, ReadsRealPngAndJpegFiles) {
  TempDir dir;
  testing::WriteImage(dir / "a.png", "png", 37, 21);
  testing::WriteImage(dir / "a.jpg", "jpeg", 64, 48);
  for (auto [file, w, h] : {std::tuple("a.png", 37, 21), std::tuple("a.jpg", 64, 48)}) {
    auto bytes = ReadFile(dir / file);
    ASSERT_TRUE(bytes.ok());
    auto size = ReadImageSize(*bytes);
    ASSERT_TRUE(size.has_value()) << file;
    EXPECT_EQ(size->width, w) << file;
    EXPECT_EQ(size->height, h) << file;
    // Cut inside the header: not an image any more.
    EXPECT_FALSE(ReadImageSize(bytes->substr(0, 12)).has_value()) << file;
  }
}

TEST(ReadImageSizeTest, ReadsGifAndWebpHeaders) {
  auto gif = ReadImageSize(std::string("GIF89a") + Bytes({0x40, 0x01, 0xF0, 0x00}));
  ASSERT_TRUE(gif.has_value());
  EXPECT_EQ(gif->width, 320);
  EXPECT_EQ(gif->height, 240);
  // VP8X: canvas width-1 and height-1 as 24-bit little-endian at 24 and 27.
  std::string webp = std::string("RIFF\0\0\0\0WEBPVP8X", 16) + std::string(8, '\0') +
                     Bytes({0x63, 0x00, 0x00, 0xC7, 0x00, 0x00}) + std::string(4, '\0');
  auto w = ReadImageSize(webp);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->width, 100);
  EXPECT_EQ(w->height, 200);
}

TEST(ReadImageSizeTest, RejectsDamagedOrMislabelledHeaders) {
  // A PNG signature followed by something that is not an IHDR chunk.
  EXPECT_FALSE(ReadImageSize(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(40, 'x')));
  // A zero-sized PNG.
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + Bytes({0, 0, 0, 13}) + "IHDR" +
                    std::string(8, '\0') + std::string(9, '\0');
  EXPECT_FALSE(ReadImageSize(png));
  // JPEG markers without a frame before the image data.
  EXPECT_FALSE(ReadImageSize(Bytes({0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 2, 3, 4, 5, 6})));
  EXPECT_FALSE(ReadImageSize("%PDF-1.4\n"));
  EXPECT_FALSE(ReadImageSize("plain text"));
}

}  // namespace
}  // namespace medeval
