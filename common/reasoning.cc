#include "common/reasoning.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace medeval {
namespace {

constexpr absl::string_view kOpen = "<think>";
constexpr absl::string_view kClose = "</think>";

}  // namespace

ReasoningSplit SplitReasoning(absl::string_view content) {
  ReasoningSplit out;
  absl::string_view lead = absl::StripLeadingAsciiWhitespace(content);
  if (absl::StartsWith(lead, kOpen)) {
    absl::string_view body = lead.substr(kOpen.size());
    size_t close = body.find(kClose);
    if (close == absl::string_view::npos) {
      out.answer = std::string(content);
      out.reasoning = std::string(absl::StripAsciiWhitespace(body));
      out.flags.emplace_back(kFlagThinkUnterminated);
      return out;
    }
    out.reasoning = std::string(absl::StripAsciiWhitespace(body.substr(0, close)));
    out.answer = std::string(absl::StripLeadingAsciiWhitespace(body.substr(close + kClose.size())));
    out.flags.emplace_back(kFlagThinkBlock);
  } else if (size_t close = content.find(kClose);
             close != absl::string_view::npos &&
             content.substr(0, close).find(kOpen) == absl::string_view::npos) {
    out.reasoning = std::string(absl::StripAsciiWhitespace(content.substr(0, close)));
    out.answer =
        std::string(absl::StripLeadingAsciiWhitespace(content.substr(close + kClose.size())));
    out.flags.emplace_back(kFlagThinkOpenMissing);
  } else {
    out.answer = std::string(content);
  }
  if (absl::StrContains(out.answer, kOpen) || absl::StrContains(out.answer, kClose)) {
    out.flags.emplace_back(kFlagThinkLeak);
  }
  return out;
}

}  // namespace medeval
