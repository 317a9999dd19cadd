#include "common/multipart.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace medeval {
namespace {

// The value of `key` in a header's parameters ('; name="file"'), quotes removed.
std::string Param(absl::string_view header, absl::string_view key) {
  for (absl::string_view p : absl::StrSplit(header, ';')) {
    p = absl::StripAsciiWhitespace(p);
    size_t eq = p.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(p.substr(0, eq)), key)) continue;
    absl::string_view v = absl::StripAsciiWhitespace(p.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<FormPart>> ParseMultipart(absl::string_view content_type,
                                                     absl::string_view body) {
  if (!absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(content_type),
                                  "multipart/form-data")) {
    return absl::InvalidArgumentError(
        "expected a multipart/form-data body (fields 'purpose' and 'file')");
  }
  const std::string boundary = Param(content_type, "boundary");
  if (boundary.empty()) return absl::InvalidArgumentError("multipart body without a boundary");
  const std::string delim = absl::StrCat("--", boundary);
  size_t pos = body.find(delim);
  if (pos == absl::string_view::npos) {
    return absl::InvalidArgumentError("multipart body does not contain its boundary");
  }
  std::vector<FormPart> parts;
  pos += delim.size();
  while (true) {
    if (body.substr(pos, 2) == "--") return parts;  // closing delimiter
    if (body.substr(pos, 2) != "\r\n") {
      return absl::InvalidArgumentError("malformed multipart delimiter line");
    }
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == absl::string_view::npos) {
      return absl::InvalidArgumentError("multipart part without the end of its headers");
    }
    FormPart part;
    for (absl::string_view line : absl::StrSplit(body.substr(pos, head_end - pos), "\r\n")) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
      absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(name, "Content-Disposition")) {
        part.name = Param(value, "name");
        part.filename = Param(value, "filename");
      } else if (absl::EqualsIgnoreCase(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    const size_t data_start = head_end + 4;
    const size_t next = body.find(absl::StrCat("\r\n", delim), data_start);
    if (next == absl::string_view::npos) {
      return absl::InvalidArgumentError("multipart body ends inside a part");
    }
    part.data = std::string(body.substr(data_start, next - data_start));
    parts.push_back(std::move(part));
    pos = next + 2 + delim.size();
  }
}

std::string BuildMultipart(const std::vector<FormPart>& parts, std::string* content_type) {
  // A boundary that cannot occur in the data.
  std::string boundary = "medeval-form-boundary-7d1f0c";
  bool clash = true;
  while (clash) {
    clash = false;
    for (const FormPart& p : parts) {
      if (absl::StrContains(p.data, boundary)) {
        absl::StrAppend(&boundary, "x");
        clash = true;
      }
    }
  }
  std::string out;
  for (const FormPart& p : parts) {
    absl::StrAppend(&out, "--", boundary, "\r\nContent-Disposition: form-data; name=\"", p.name,
                    "\"");
    if (!p.filename.empty()) absl::StrAppend(&out, "; filename=\"", p.filename, "\"");
    absl::StrAppend(&out, "\r\n");
    if (!p.content_type.empty()) absl::StrAppend(&out, "Content-Type: ", p.content_type, "\r\n");
    absl::StrAppend(&out, "\r\n", p.data, "\r\n");
  }
  absl::StrAppend(&out, "--", boundary, "--\r\n");
  *content_type = absl::StrCat("multipart/form-data; boundary=", boundary);
  return out;
}

}  // namespace medeval
