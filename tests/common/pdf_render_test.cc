#include "common/pdf_render.h"

#include <dirent.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "common/file_util.h"
#include "common/media_type.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using testing::TempDir;

ImageSize SizeOf(const std::string& png) {
  auto bytes = ReadFile(png);
  EXPECT_TRUE(bytes.ok()) << png;
  EXPECT_EQ(SniffMediaType(bytes.ok() ? *bytes : ""), MediaType::kPng) << png;
  auto size = ReadImageSize(bytes.ok() ? *bytes : "");
  return size.value_or(ImageSize{});
}

TEST(RenderPdfTest, RendersTheFirstPagesAtTheAskedResolution) {
  TempDir dir;
  testing::WritePdf(dir / "report.pdf", 3, 200, 100);
  PdfRenderOptions o;
  o.max_pages = 2;
  o.dpi = 72;  // one pixel per point
  auto r = RenderPdf(dir / "report.pdf", dir / "cache", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->page_count, 3);
  ASSERT_EQ(r->pages.size(), 2u);
  EXPECT_EQ(r->rendered_now, 2);
  for (const std::string& p : r->pages) {
    ImageSize s = SizeOf(p);
    EXPECT_EQ(s.width, 200) << p;
    EXPECT_EQ(s.height, 100) << p;
  }
  EXPECT_NE(*ReadFile(r->pages[0]), *ReadFile(r->pages[1])) << "pages hold different drawings";

  o.dpi = 144;
  auto hi = RenderPdf(dir / "report.pdf", dir / "cache", o);
  ASSERT_TRUE(hi.ok()) << hi.status();
  EXPECT_EQ(hi->rendered_now, 2) << "another resolution is rendered anew";
  EXPECT_EQ(SizeOf(hi->pages[0]).width, 400);
  EXPECT_EQ(SizeOf(hi->pages[0]).height, 200);
}

TEST(RenderPdfTest, ARerunUsesTheCache) {
  TempDir dir;
  testing::WritePdf(dir / "a.pdf", 2);
  PdfRenderOptions o;
  o.dpi = 72;
  auto first = RenderPdf(dir / "a.pdf", dir / "cache", o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rendered_now, 2);
  auto again = RenderPdf(dir / "a.pdf", dir / "cache", o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rendered_now, 0);
  EXPECT_EQ(again->pages, first->pages);
  // The cache is keyed by content: the same report under another name hits it.
  testing::WriteText(dir / "copy/b.pdf", *ReadFile(dir / "a.pdf"));
  auto copy = RenderPdf(dir / "copy/b.pdf", dir / "cache", o);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->rendered_now, 0);
  // A page lost from the cache is rendered again, and only that one.
  ASSERT_EQ(::unlink(first->pages[1].c_str()), 0);
  auto repaired = RenderPdf(dir / "a.pdf", dir / "cache", o);
  ASSERT_TRUE(repaired.ok());
  EXPECT_EQ(repaired->rendered_now, 1);
  EXPECT_TRUE(PathExists(first->pages[1]));
}

TEST(RenderPdfTest, DamagedFilesAreInvalidArgument) {
  TempDir dir;
  testing::WriteText(dir / "junk.pdf", "%PDF-1.4\nthis is not a PDF body\n");
  auto r = RenderPdf(dir / "junk.pdf", dir / "cache", PdfRenderOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "junk.pdf")) << r.status();
  EXPECT_FALSE(CheckPdf("%PDF-1.4\nthis is not a PDF body\n").ok());
  EXPECT_TRUE(CheckPdf(testing::MakePdf(1)).ok());
  EXPECT_EQ(RenderPdf(dir / "absent.pdf", dir / "cache", PdfRenderOptions()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RenderPdfTest, RealMedOcrReport) {
  const std::string root = testing::SharedMedbench("v4/VLM/MedOCR");
  if (root.empty()) GTEST_SKIP() << "../shared/medbench is absent";
  // The first PDF report present in the shared copy.
  std::string pdf;
  for (const char* sub :
       {"20241126-CT/图文报告", "20241126-DX/图文报告", "20241126-EIS/图文报告"}) {
    DIR* d = ::opendir(JoinPath(root, sub).c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (absl::EndsWith(name, ".pdf") &&
          CheckPdf(*ReadFile(JoinPath(root, sub) + "/" + name)).ok()) {
        pdf = JoinPath(JoinPath(root, sub), name);
        break;
      }
    }
    ::closedir(d);
    if (!pdf.empty()) break;
  }
  if (pdf.empty()) GTEST_SKIP() << "no readable PDF report in the shared copy";
  TempDir dir;
  PdfRenderOptions o;
  o.max_pages = 1;
  o.dpi = 100;
  auto r = RenderPdf(pdf, dir / "cache", o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->pages.size(), 1u);
  ImageSize s = SizeOf(r->pages[0]);
  // A report page (A4 or similar) at 100 dpi: several hundred pixels a side.
  EXPECT_GT(s.width, 300);
  EXPECT_GT(s.height, 300);
  EXPECT_GT(ReadFile(r->pages[0])->size(), 2000u) << "a rendered page is not blank";
}

}  // namespace
}  // namespace medeval
