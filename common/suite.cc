#include "common/suite.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/input_path.h"
#include "common/media_type.h"
#include "common/pdf_render.h"
#include "common/sha256.h"
#include "common/utf8.h"

namespace medeval {
namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at
// line 1, column 7: "; keep the column and the reason.
std::string CleanParseError(const std::string& what) {
  std::string msg = what;
  size_t pos = msg.find("column ");
  if (pos != std::string::npos) msg = msg.substr(pos);
  return absl::StrCat("invalid JSON (", msg, ")");
}

// Readable, of a type a vision request can carry (or a PDF to render), and
// with a well-formed header: what a model would fail on is caught up front.
std::string CheckImageFile(const std::string& path, const std::string& shown, std::string* sha256) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return absl::StrCat("cannot read image ", shown);
  *sha256 = Sha256Hex(*bytes);
  const MediaType type = SniffMediaType(*bytes);
  if (type == MediaType::kUnknown) {
    return absl::StrCat("unsupported image type: ", shown, " (PNG, JPEG, GIF, WebP or PDF)");
  }
  if (type == MediaType::kPdf) {
    absl::Status st = CheckPdf(*bytes);
    if (!st.ok()) return absl::StrCat("damaged PDF ", shown, " (", st.message(), ")");
  } else if (!ReadImageSize(*bytes).has_value()) {
    return absl::StrCat("damaged image ", shown, " (", MimeType(type), " header unreadable)");
  }
  return "";
}

}  // namespace

std::string InputIssue::ToString() const {
  if (line == 0) return absl::StrCat(path, ": ", message);
  return absl::StrCat(path, ":", line, ": ", message);
}

std::vector<absl::string_view> Dataset::images(size_t i) const {
  std::vector<absl::string_view> out;
  const Ref& r = refs_[i];
  for (uint32_t k = 0; k < r.image_count; ++k) out.push_back(image_paths_[r.image_begin + k]);
  return out;
}

void Dataset::Add(uint32_t line, absl::string_view question,
                  const std::vector<std::string>& images) {
  Ref r;
  r.line = line;
  r.offset = arena_.size();
  r.length = static_cast<uint32_t>(question.size());
  r.image_begin = static_cast<uint32_t>(image_paths_.size());
  r.image_count = static_cast<uint32_t>(images.size());
  arena_.append(question.data(), question.size());
  for (const auto& p : images) image_paths_.push_back(p);
  refs_.push_back(r);
}

void Dataset::ShrinkToFit() {
  arena_.shrink_to_fit();
  refs_.shrink_to_fit();
  image_paths_.shrink_to_fit();
}

size_t Suite::question_count() const {
  size_t n = 0;
  for (const auto& d : datasets) n += d.size();
  return n;
}

std::vector<InputIssue> Suite::issues() const {
  std::vector<InputIssue> out;
  for (const auto& d : datasets) out.insert(out.end(), d.issues.begin(), d.issues.end());
  return out;
}

bool IsBlankLine(absl::string_view line) { return absl::StripAsciiWhitespace(line).empty(); }

namespace {

// The top-level shape of one input line, read with nlohmann's SAX interface
// so no document is built (suites of a million lines load several times
// faster than with a DOM per line).
class LineShape : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string root_type;
  std::string question_type, other_type, img_type;  // empty: key absent
  std::string question;
  std::vector<std::string>* images;
  bool img_non_string = false;
  std::string error;

  explicit LineShape(std::vector<std::string>* out_images) : images(out_images) {}

  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("boolean"); }
  bool number_integer(number_integer_t) override { return Value("number"); }
  bool number_unsigned(number_unsigned_t) override { return Value("number"); }
  bool number_float(number_float_t, const string_t&) override { return Value("number"); }
  bool string(string_t& s) override { return Value("string", &s); }
  bool binary(binary_t&) override { return Value("binary"); }
  bool start_object(std::size_t) override {
    Value("object");
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    Value("array");
    if (depth_ == 1 && key_ == "img_path") in_images_ = true;
    ++depth_;
    return true;
  }
  bool end_array() override {
    if (--depth_ == 1) in_images_ = false;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error = ex.what();
    return false;
  }

 private:
  bool Value(const char* type, string_t* s = nullptr) {
    if (depth_ == 0) {
      root_type = type;
    } else if (depth_ == 1) {
      if (key_ == "question") {
        question_type = type;
        if (s) question = std::move(*s);
      } else if (key_ == "other") {
        other_type = type;
      } else if (key_ == "img_path") {
        img_type = type;
        images->clear();
        if (s) images->push_back(std::move(*s));
      }
    } else if (depth_ == 2 && in_images_) {
      if (s) {
        images->push_back(std::move(*s));
      } else {
        img_non_string = true;
      }
    }
    return true;
  }

  int depth_ = 0;
  std::string key_;
  bool in_images_ = false;
};

}  // namespace

std::string ValidateLine(absl::string_view line, bool vlm, std::string* question,
                         std::vector<std::string>* images) {
  size_t bad = FindInvalidUtf8(line);
  if (bad != absl::string_view::npos) {
    return absl::StrCat("invalid UTF-8 at byte ", bad + 1);
  }
  images->clear();
  LineShape shape(images);
  if (!nlohmann::json::sax_parse(line.begin(), line.end(), &shape)) {
    return CleanParseError(shape.error);
  }
  if (shape.root_type != "object") {
    return absl::StrCat("expected a JSON object, found ", shape.root_type);
  }
  if (shape.question_type.empty()) return "missing \"question\"";
  if (shape.question_type != "string") {
    return absl::StrCat("\"question\" must be a string, found ", shape.question_type);
  }
  if (shape.question.empty()) return "\"question\" is empty";
  if (shape.other_type.empty()) return "missing \"other\" (the platform matches answers by it)";
  if (shape.other_type != "object") {
    return absl::StrCat("\"other\" must be an object, found ", shape.other_type);
  }
  if (vlm) {
    if (shape.img_type.empty()) return "missing \"img_path\"";
    if (shape.img_type != "string" && shape.img_type != "array") {
      return absl::StrCat("\"img_path\" must be a string or a list, found ", shape.img_type);
    }
    if (shape.img_non_string) return "\"img_path\" list must hold strings";
    if (images->empty()) return "\"img_path\" is empty";
  } else if (!shape.img_type.empty()) {
    // Never sent without its images as a text question.
    return "has \"img_path\": a question with images (VLM track), not asked as text; run it "
           "with --track v4-vlm";
  } else {
    images->clear();
  }
  *question = std::move(shape.question);
  return "";
}

absl::StatusOr<Suite> LoadSuite(const std::string& root, const LoadOptions& options) {
  auto layout =
      DetectSuite(root, options.forced_track, options.only_datasets, options.known_names_only);
  if (!layout.ok()) return layout.status();
  Suite suite;
  suite.root = layout->root;
  suite.track = layout->track;
  suite.notes = std::move(layout->notes);
  const std::string root_real = ResolvedPath(suite.root);
  const bool vlm = suite.track == Track::kV4Vlm;
  // Images are checked once each (many questions share one).
  std::map<std::string, std::string> image_problem;
  auto check_image = [&](const std::string& img) -> std::string {
    auto it = image_problem.find(img);
    if (it != image_problem.end()) return it->second;
    std::string err;
    const std::string ipath = JoinPath(suite.root, img);
    if (!IsSafeRelativePath(img)) {
      err = absl::StrCat("image path escapes the suite folder: ", img);
    } else {
      err = InputFileProblem(ipath, root_real, absl::StrCat("image ", img));
      if (absl::StartsWith(err, "missing ")) err = absl::StrCat("missing image ", img);
      std::string sha;
      if (err.empty()) err = CheckImageFile(ipath, img, &sha);
      if (err.empty()) suite.image_sha256[img] = sha;
    }
    image_problem[img] = err;
    return err;
  };
  for (const DatasetFile& f : layout->files) {
    std::string path = JoinPath(suite.root, f.input_path);
    auto contents = ReadFile(path);
    if (!contents.ok()) return contents.status();
    Dataset ds;
    ds.file = f;
    ds.sha256 = Sha256Hex(*contents);
    std::vector<absl::string_view> lines = SplitLines(*contents);
    ds.line_count = static_cast<uint32_t>(lines.size());
    std::string question;
    std::vector<std::string> images;
    for (size_t i = 0; i < lines.size(); ++i) {
      uint32_t lineno = static_cast<uint32_t>(i + 1);
      if (IsBlankLine(lines[i])) {
        ++ds.blank_lines;
        continue;
      }
      std::string err = ValidateLine(lines[i], vlm, &question, &images);
      if (err.empty() && vlm && options.check_images) {
        for (const auto& img : images) {
          err = check_image(img);
          if (!err.empty()) break;
        }
      }
      if (!err.empty()) {
        InputIssue issue{path, lineno, err, {}};
        for (const auto& img : images) {
          // Only files that may be read travel with a submission.
          if (IsSafeRelativePath(img) &&
              InputFileProblem(JoinPath(suite.root, img), root_real, img).empty()) {
            issue.files.push_back(img);
          }
        }
        ds.issues.push_back(std::move(issue));
        continue;
      }
      ds.Add(lineno, question, images);
    }
    if (ds.blank_lines > 0) {
      suite.notes.push_back(absl::StrCat(
          path, ": ", ds.blank_lines, ds.blank_lines == 1 ? " blank line is" : " blank lines are",
          " not a question and not copied into the upload files"));
    }
    if (ds.size() == 0 && ds.issues.empty()) {
      ds.issues.push_back({path, 0, "no questions in this file", {}});
    }
    ds.ShrinkToFit();
    suite.datasets.push_back(std::move(ds));
  }
  // Only the images of asked questions name the run.
  std::map<std::string, std::string> used;
  for (const Dataset& ds : suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) {
      for (absl::string_view img : ds.images(i)) {
        auto it = suite.image_sha256.find(std::string(img));
        if (it != suite.image_sha256.end()) used.insert(*it);
      }
    }
  }
  suite.image_sha256 = std::move(used);
  return suite;
}

}  // namespace medeval
